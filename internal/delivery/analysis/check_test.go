package analysis

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/fakeprom"
)

var (
	successRate = meshv1alpha1.CanaryMetric{Name: RequestSuccessRate, ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("99")}}
	duration    = meshv1alpha1.CanaryMetric{Name: RequestDuration, ThresholdRange: meshv1alpha1.ThresholdRange{Max: s("500")}}
)

func server(p *fakeprom.Server) meshv1alpha1.MetricsServer {
	return meshv1alpha1.MetricsServer{Address: p.URL}
}

func one(t *testing.T, rs []Result) Result {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("want 1 result, got %d: %+v", len(rs), rs)
	}
	return rs[0]
}

func wantFailed(t *testing.T, r Result, parts ...string) {
	t.Helper()
	if r.Passed {
		t.Fatalf("check passed, want failed: %+v", r)
	}
	if !math.IsNaN(r.Value) && len(parts) > 0 && strings.Contains(parts[0], "no data") {
		t.Errorf("no-data result has value %v, want NaN", r.Value)
	}
	for _, p := range parts {
		if !strings.Contains(r.Message, p) {
			t.Errorf("message %q lacks %q", r.Message, p)
		}
	}
}

func TestCheckPassAndOutOfRange(t *testing.T) {
	p := fakeprom.Start(t)
	p.Set("istio_requests_total", 99.7)
	p.Set("istio_request_duration_milliseconds_bucket", 612)
	c := &Checker{}
	rs := c.Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate, duration}, target(meshv1alpha1.ProviderIstio))
	if len(rs) != 2 {
		t.Fatalf("want 2 results, got %+v", rs)
	}
	if !rs[0].Passed || rs[0].Value != 99.7 || rs[0].Metric != RequestSuccessRate || rs[0].Message != "" {
		t.Fatalf("success rate: %+v", rs[0])
	}
	wantFailed(t, rs[1], "request-duration", "value 612 is above max 500")
	if rs[1].Value != 612 {
		t.Fatalf("out-of-range value not reported: %+v", rs[1])
	}
	if Failed(rs) != 1 {
		t.Fatalf("Failed = %d", Failed(rs))
	}
	// The queries sent are the rendered built-ins, for this workload.
	qs := p.Queries()
	if len(qs) != 2 {
		t.Fatalf("queries: %q", qs)
	}
	for _, q := range qs {
		if !strings.Contains(q, `destination_workload="checkout"`) || !strings.Contains(q, "[30s]") {
			t.Errorf("unexpected query %s", q)
		}
	}
}

func TestCheckScalarAndCustomQuery(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetScalar("my_errors", 0.5)
	m := meshv1alpha1.CanaryMetric{Name: "error-ratio", Query: `sum(rate(my_errors{namespace="{{ namespace }}"}[{{ interval }}]))`,
		ThresholdRange: meshv1alpha1.ThresholdRange{Max: s("1")}, Interval: &metav1.Duration{Duration: 5 * time.Minute}}
	r := one(t, (&Checker{}).Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{m}, target(meshv1alpha1.ProviderLinkerd)))
	if !r.Passed || r.Value != 0.5 {
		t.Fatalf("%+v", r)
	}
	if q := p.Queries()[0]; q != `sum(rate(my_errors{namespace="shop"}[5m]))` {
		t.Fatalf("query sent: %s", q)
	}
}

func TestCheckNoData(t *testing.T) {
	p := fakeprom.Start(t)
	// Default: no rule matches, no data.
	r := one(t, (&Checker{}).Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderCilium)))
	wantFailed(t, r, "no data for query", "hubble_http_requests_total")
	if !math.IsNaN(r.Value) {
		t.Fatalf("value %v, want NaN", r.Value)
	}
	// Explicit no data overrides a default.
	p.SetDefault(100)
	p.SetNoData("hubble_http_requests_total")
	wantFailed(t, one(t, (&Checker{}).Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderCilium))), "no data for query")
	// NaN (0/0 without traffic) and Inf are no data too.
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		p.Set("hubble_http_requests_total", v)
		r := one(t, (&Checker{}).Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderCilium)))
		wantFailed(t, r, "no data for query", "hubble_http_requests_total")
		if !math.IsNaN(r.Value) {
			t.Fatalf("value %v for %v, want NaN", r.Value, v)
		}
	}
}

func TestCheckMultipleSamples(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetSamples("response_total", 99.9, 100)
	r := one(t, (&Checker{}).Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderLinkerd)))
	wantFailed(t, r, "returned 2 series", "must return one", "response_total")
}

func TestCheckUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	_ = l.Close()
	start := time.Now()
	rs := (&Checker{}).Check(context.Background(), meshv1alpha1.MetricsServer{Address: addr}, nil,
		[]meshv1alpha1.CanaryMetric{successRate, duration}, target(meshv1alpha1.ProviderIstio))
	for _, r := range rs {
		wantFailed(t, r, addr, "connection refused")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("refused connection took %s", time.Since(start))
	}
}

func TestCheckServerGoesAway(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetDefault(100)
	c := &Checker{}
	if r := one(t, c.Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderIstio))); !r.Passed {
		t.Fatalf("before Close: %+v", r)
	}
	p.Close()
	wantFailed(t, one(t, c.Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderIstio))), p.URL, "unreachable")
}

func TestCheckTimeout(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetDefault(100)
	p.SetDelay(5 * time.Second)
	c := &Checker{Timeout: 200 * time.Millisecond}
	start := time.Now()
	r := one(t, c.Check(context.Background(), server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderIstio)))
	wantFailed(t, r, p.URL, "did not answer within 200ms")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout not honoured: %s", d)
	}
}

func TestCheckQueryErrors(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetError("bad", http.StatusBadRequest, `1:5: parse error: unexpected "}"`)
	p.SetError("boom", http.StatusInternalServerError, "storage on fire")
	p.SetError("unavailable", http.StatusServiceUnavailable, "")
	ms := []meshv1alpha1.CanaryMetric{
		// Valid PromQL the server refuses anyway (bad_data), e.g. a
		// Prometheus-compatible server with another dialect.
		{Name: "bad", Query: "bad", ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("0")}},
		{Name: "boom", Query: "boom", ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("0")}},
		{Name: "unavailable", Query: "unavailable", ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("0")}},
		{Name: "placeholder", Query: "x{{ nope }}", ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("0")}},
		// Malformed PromQL is refused by Prometheus's parser before sending.
		{Name: "malformed", Query: "bad}", ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("0")}},
	}
	rs := (&Checker{}).Check(context.Background(), server(p), nil, ms, target(meshv1alpha1.ProviderIstio))
	wantFailed(t, rs[0], "could not evaluate query bad", "bad_data", "parse error")
	wantFailed(t, rs[1], p.URL, "storage on fire")
	wantFailed(t, rs[2], p.URL, "503")
	wantFailed(t, rs[3], "unknown placeholder {{ nope }}")
	wantFailed(t, rs[4], "query bad} is not valid PromQL", "unexpected character")
	if len(p.Queries()) != 3 {
		t.Fatalf("a query that did not render was sent: %q", p.Queries())
	}
}

func TestCheckAuth(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetDefault(100)
	c := &Checker{}
	ms := []meshv1alpha1.CanaryMetric{successRate}
	c.Check(context.Background(), server(p), &Credentials{Username: "ops", Password: "s3cret"}, ms, target(meshv1alpha1.ProviderIstio))
	c.Check(context.Background(), server(p), &Credentials{Token: "tok", Username: "ignored"}, ms, target(meshv1alpha1.ProviderIstio))
	c.Check(context.Background(), server(p), &Credentials{}, ms, target(meshv1alpha1.ProviderIstio))
	c.Check(context.Background(), server(p), nil, ms, target(meshv1alpha1.ProviderIstio))
	hs := p.Headers()
	if len(hs) != 4 {
		t.Fatalf("want 4 requests, got %d", len(hs))
	}
	if got, want := hs[0].Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("ops:s3cret")); got != want {
		t.Errorf("basic auth header %q, want %q", got, want)
	}
	if got := hs[1].Get("Authorization"); got != "Bearer tok" {
		t.Errorf("bearer header %q", got)
	}
	for i := 2; i < 4; i++ {
		if got := hs[i].Get("Authorization"); got != "" {
			t.Errorf("request %d: unexpected Authorization %q", i, got)
		}
	}
}

func TestCheckInsecureSkipVerify(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"100"]}]}}`))
	}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	t.Cleanup(tlsSrv.Close)
	c := &Checker{}
	ms := []meshv1alpha1.CanaryMetric{successRate}
	r := one(t, c.Check(context.Background(), meshv1alpha1.MetricsServer{Address: tlsSrv.URL}, nil, ms, target(meshv1alpha1.ProviderIstio)))
	wantFailed(t, r, tlsSrv.URL, "certificate")
	r = one(t, c.Check(context.Background(), meshv1alpha1.MetricsServer{Address: tlsSrv.URL, InsecureSkipVerify: true}, nil, ms, target(meshv1alpha1.ProviderIstio)))
	if !r.Passed || r.Value != 100 {
		t.Fatalf("insecureSkipVerify: %+v", r)
	}
}

func TestCheckEvaluationTime(t *testing.T) {
	var gotTime string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		gotTime = r.Form.Get("time")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"100"]}]}}`))
	}))
	t.Cleanup(srv.Close)
	at := time.Unix(1700000000, 0)
	c := &Checker{Now: func() time.Time { return at }}
	r := one(t, c.Check(context.Background(), meshv1alpha1.MetricsServer{Address: srv.URL}, nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderIstio)))
	if !r.Passed {
		t.Fatalf("%+v", r)
	}
	if !strings.HasPrefix(gotTime, "1700000000") {
		t.Fatalf("time param %q, want the instant query at Now", gotTime)
	}
}

func TestCheckCancelledContext(t *testing.T) {
	p := fakeprom.Start(t)
	p.SetDefault(100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := one(t, (&Checker{}).Check(ctx, server(p), nil, []meshv1alpha1.CanaryMetric{successRate}, target(meshv1alpha1.ProviderIstio)))
	wantFailed(t, r, "abandoned", "context canceled")
}

func TestCheckBadAddress(t *testing.T) {
	rs := (&Checker{}).Check(context.Background(), meshv1alpha1.MetricsServer{Address: "://nope"}, nil, []meshv1alpha1.CanaryMetric{successRate, duration}, target(meshv1alpha1.ProviderIstio))
	for _, r := range rs {
		wantFailed(t, r, "://nope")
	}
}

func TestCheckNoMetrics(t *testing.T) {
	if rs := (&Checker{}).Check(context.Background(), meshv1alpha1.MetricsServer{Address: "http://127.0.0.1:1"}, nil, nil, Target{}); len(rs) != 0 {
		t.Fatalf("%+v", rs)
	}
}

func TestCheckNativeHistogram(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1700000000,{"count":"10","sum":"5","buckets":[[0,"0","1","10"]]}]}]}}`))
	}))
	t.Cleanup(srv.Close)
	m := meshv1alpha1.CanaryMetric{Name: "h", Query: "rate(h[1m])", ThresholdRange: meshv1alpha1.ThresholdRange{Min: s("0")}}
	r := one(t, (&Checker{}).Check(context.Background(), meshv1alpha1.MetricsServer{Address: srv.URL}, nil, []meshv1alpha1.CanaryMetric{m}, target(meshv1alpha1.ProviderIstio)))
	wantFailed(t, r, "native histogram")
}
