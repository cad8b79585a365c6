package fakeprom

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return resp.StatusCode, m
}

func TestRawResponses(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %s not on 127.0.0.1", s.URL)
	}
	s.Set("up", 42.5)
	code, m := get(t, s.URL+"/api/v1/query?query=up&time=1700000000.5")
	if code != 200 || m["status"] != "success" {
		t.Fatalf("%d %v", code, m)
	}
	data := m["data"].(map[string]any)
	res := data["result"].([]any)
	if data["resultType"] != "vector" || len(res) != 1 {
		t.Fatalf("%v", data)
	}
	v := res[0].(map[string]any)["value"].([]any)
	if v[0].(float64) != 1700000000.5 || v[1] != "42.5" {
		t.Fatalf("value %v", v)
	}

	// Missing query: 400 with a Prometheus error body.
	code, m = get(t, s.URL+"/api/v1/query")
	if code != 400 || m["status"] != "error" || m["errorType"] != "bad_data" || m["error"] == "" {
		t.Fatalf("%d %v", code, m)
	}
	// Bad time.
	code, m = get(t, s.URL+"/api/v1/query?query=up&time=yesterday")
	if code != 400 || m["errorType"] != "bad_data" {
		t.Fatalf("%d %v", code, m)
	}
	// Other endpoints are not answered.
	code, _ = get(t, s.URL+"/api/v1/query_range?query=up")
	if code != 404 {
		t.Fatalf("query_range: %d", code)
	}
	// POST form.
	resp, err := http.PostForm(s.URL+"/api/v1/query", url.Values{"query": {"up"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if got := s.Queries(); len(got) != 2 || got[0] != "up" || got[1] != "up" {
		t.Fatalf("queries %q (the missing-query and bad-time requests are not recorded)", got)
	}
}

// TestWithClientGolang reads every scripted answer back through the same
// client the Canary controller uses.
func TestWithClientGolang(t *testing.T) {
	s := Start(t)
	c, err := promapi.NewClient(promapi.Config{Address: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(c)
	q := func(query string) (model.Value, error) {
		v, _, _, err := api.Query(context.Background(), query, time.Unix(1700000000, 0))
		return v, err
	}
	s.Set("rate(a", 1)
	s.Set("rate(", 2)  // first matching rule wins
	s.Set("rate(a", 3) // replaces in place, keeps its position
	s.SetNoData("empty")
	s.SetSamples("many", 1, 2, 3)
	s.SetScalar("scalar", 7)
	s.Set("nan", math.NaN())
	s.SetError("broken", 422, "execution error")

	v, err := q("sum(rate(a[1m]))")
	if err != nil || v.(model.Vector)[0].Value != 3 {
		t.Fatalf("%v %v", v, err)
	}
	if v, _ := q("sum(rate(b[1m]))"); v.(model.Vector)[0].Value != 2 {
		t.Fatalf("%v", v)
	}
	if v, _ := q("empty"); len(v.(model.Vector)) != 0 {
		t.Fatalf("%v", v)
	}
	if v, _ := q("unmatched"); len(v.(model.Vector)) != 0 {
		t.Fatalf("default is no data: %v", v)
	}
	s.SetDefault(9)
	if v, _ := q("unmatched"); v.(model.Vector)[0].Value != 9 {
		t.Fatalf("default: %v", v)
	}
	if v, _ := q("many"); len(v.(model.Vector)) != 3 {
		t.Fatalf("%v", v)
	}
	if v, _ := q("scalar"); v.(*model.Scalar).Value != 7 {
		t.Fatalf("%v", v)
	}
	if v, _ := q("nan"); !math.IsNaN(float64(v.(model.Vector)[0].Value)) {
		t.Fatalf("%v", v)
	}
	if _, err := q("broken"); err == nil || !strings.Contains(err.Error(), "execution error") {
		t.Fatalf("%v", err)
	}
	if v, _ := q("scalar"); v.(*model.Scalar).Timestamp.Unix() != 1700000000 {
		t.Fatalf("time param not echoed: %v", v)
	}

	s.Close()
	s.Close() // idempotent
	if _, err := q("sum(rate(a[1m]))"); err == nil {
		t.Fatal("query after Close succeeded")
	}
}

func TestDelayAndConcurrency(t *testing.T) {
	s := Start(t)
	s.SetDefault(1)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Set("q", float64(i))
			resp, err := http.Get(s.URL + "/api/v1/query?query=q")
			if err == nil {
				resp.Body.Close()
			}
			_ = s.Queries()
		}()
	}
	wg.Wait()
	if len(s.Queries()) != 20 {
		t.Fatalf("%d queries", len(s.Queries()))
	}
	s.SetDelay(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query?query=q", nil)
	start := time.Now()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("delayed answer came before the client's deadline")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("client deadline not effective")
	}
}

func TestNewAndListen(t *testing.T) {
	s := New()
	defer s.Close()
	s.Set("x", 1)
	if code, _ := get(t, s.URL+"/api/v1/query?query=x"); code != 200 {
		t.Fatalf("New: %d", code)
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !strings.HasPrefix(l.URL, "http://127.0.0.1:") {
		t.Fatalf("Listen URL %s", l.URL)
	}
	if code, _ := get(t, l.URL+"/api/v1/query?query=x"); code != 200 {
		t.Fatalf("Listen: %d", code)
	}
	if _, err := Listen(strings.TrimPrefix(l.URL, "http://")); err == nil {
		t.Fatal("Listen on a taken port succeeded")
	}
}
