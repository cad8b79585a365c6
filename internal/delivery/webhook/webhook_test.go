package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// recorder is a webhook receiver on 127.0.0.1 answering with a scripted
// status per path and recording what it got.
type recorder struct {
	srv *httptest.Server

	mu     sync.Mutex
	status map[string]int
	body   map[string]string
	delay  map[string]time.Duration
	calls  []call
}

type call struct {
	path        string
	method      string
	contentType string
	raw         []byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{status: map[string]int{}, body: map[string]string{}, delay: map[string]time.Duration{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls = append(r.calls, call{path: req.URL.Path, method: req.Method, contentType: req.Header.Get("Content-Type"), raw: raw})
		st, body, d := r.status[req.URL.Path], r.body[req.URL.Path], r.delay[req.URL.Path]
		r.mu.Unlock()
		if d > 0 {
			select {
			case <-time.After(d):
			case <-req.Context().Done():
				return
			}
		}
		if st == 0 {
			st = http.StatusOK
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) hook(name string, typ meshv1alpha1.WebhookType, path string) meshv1alpha1.CanaryWebhook {
	return meshv1alpha1.CanaryWebhook{Name: name, Type: typ, URL: r.srv.URL + path}
}

func (r *recorder) got() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ps []string
	for _, c := range r.calls {
		ps = append(ps, c.path)
	}
	return ps
}

var payload = Payload{Name: "podinfo", Namespace: "test", Phase: meshv1alpha1.CanaryPhaseProgressing, Checksum: "abc123"}

func TestCallPayloadShape(t *testing.T) {
	r := newRecorder(t)
	h := r.hook("load", meshv1alpha1.WebhookRollout, "/load")
	h.Metadata = map[string]string{"cmd": "hey -z 1m http://podinfo-canary.test:9898/", "type": "from-hook"}
	p := payload
	p.Type = meshv1alpha1.WebhookEvent // overwritten by the hook's type
	p.Metadata = map[string]string{"type": "from-caller", "cluster": "east"}
	if err := (&Caller{}).Call(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	calls := r.got()
	if len(calls) != 1 {
		t.Fatalf("calls: %d", len(calls))
	}
	c := calls[0]
	if c.method != http.MethodPost || c.contentType != "application/json" {
		t.Fatalf("method %s content type %s", c.method, c.contentType)
	}
	// The exact JSON field names are the contract with receivers.
	var raw map[string]any
	if err := json.Unmarshal(c.raw, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "podinfo", "namespace": "test", "phase": "Progressing", "type": "rollout", "checksum": "abc123",
		"metadata": map[string]any{"cmd": "hey -z 1m http://podinfo-canary.test:9898/", "type": "from-hook", "cluster": "east"},
	}
	gotJSON, _ := json.Marshal(raw)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("payload\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// The caller's map is not modified.
	if p.Metadata["type"] != "from-caller" || len(p.Metadata) != 2 {
		t.Fatalf("caller metadata modified: %v", p.Metadata)
	}
}

func TestCallNoMetadataOmitted(t *testing.T) {
	r := newRecorder(t)
	if err := (&Caller{}).Call(context.Background(), r.hook("gate", meshv1alpha1.WebhookConfirmRollout, "/gate"), payload); err != nil {
		t.Fatal(err)
	}
	if raw := string(r.got()[0].raw); strings.Contains(raw, "metadata") {
		t.Fatalf("empty metadata sent: %s", raw)
	}
}

func TestCallStatuses(t *testing.T) {
	r := newRecorder(t)
	r.status["/ok"] = http.StatusOK
	r.status["/accepted"] = http.StatusAccepted
	r.status["/nocontent"] = http.StatusNoContent
	r.status["/forbidden"] = http.StatusForbidden
	r.body["/forbidden"] = "not approved yet\n  by the release manager"
	r.status["/broken"] = http.StatusInternalServerError
	r.body["/broken"] = strings.Repeat("x", 5000)
	r.status["/redirect"] = http.StatusNotModified
	c := &Caller{}
	for _, p := range []string{"/ok", "/accepted", "/nocontent"} {
		if err := c.Call(context.Background(), r.hook("h", meshv1alpha1.WebhookConfirmPromotion, p), payload); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	err := c.Call(context.Background(), r.hook("approve", meshv1alpha1.WebhookConfirmPromotion, "/forbidden"), payload)
	if err == nil {
		t.Fatal("403 passed")
	}
	// A plain-text body is never quoted.
	if want := "webhook approve (confirm-promotion) " + r.srv.URL + "/forbidden: status 403 (refused: not authorized or not approved)"; err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	err = c.Call(context.Background(), r.hook("tests", meshv1alpha1.WebhookPreRollout, "/broken"), payload)
	if want := "webhook tests (pre-rollout) " + r.srv.URL + "/broken: status 500 (the hook failed)"; err == nil || err.Error() != want {
		t.Fatalf("500: %v", err)
	}
	if err := c.Call(context.Background(), r.hook("r", meshv1alpha1.WebhookRollout, "/redirect"), payload); err == nil || !strings.Contains(err.Error(), "status 304") {
		t.Fatalf("304: %v", err)
	}
}

func TestCallTimeout(t *testing.T) {
	r := newRecorder(t)
	r.delay["/slow"] = 10 * time.Second
	h := r.hook("slow-gate", meshv1alpha1.WebhookConfirmTrafficIncrease, "/slow")
	h.Timeout = &metav1.Duration{Duration: 200 * time.Millisecond}
	start := time.Now()
	err := (&Caller{}).Call(context.Background(), h, payload)
	if err == nil {
		t.Fatal("slow hook passed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout not honoured: %s", d)
	}
	for _, w := range []string{"slow-gate", r.srv.URL + "/slow", "no answer within 200ms"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestCallDefaultTimeoutAndCallerContext(t *testing.T) {
	r := newRecorder(t)
	r.delay["/slow"] = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := (&Caller{}).Call(ctx, r.hook("slow", meshv1alpha1.WebhookEvent, "/slow"), payload)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("caller's context not honoured: %v after %s", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("caller's deadline reported as the hook's: %v", err)
	}
}

func TestCallUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/gate"
	_ = l.Close()
	err = (&Caller{}).Call(context.Background(), meshv1alpha1.CanaryWebhook{Name: "gone", Type: meshv1alpha1.WebhookConfirmRollout, URL: url}, payload)
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestRunOrderAndStop(t *testing.T) {
	r := newRecorder(t)
	r.status["/b"] = http.StatusServiceUnavailable
	hooks := []meshv1alpha1.CanaryWebhook{
		r.hook("a", meshv1alpha1.WebhookConfirmPromotion, "/a"),
		r.hook("other", meshv1alpha1.WebhookPreRollout, "/other"),
		r.hook("b", meshv1alpha1.WebhookConfirmPromotion, "/b"),
		r.hook("c", meshv1alpha1.WebhookConfirmPromotion, "/c"),
	}
	err := (&Caller{}).Run(context.Background(), hooks, meshv1alpha1.WebhookConfirmPromotion, payload)
	if err == nil || !strings.Contains(err.Error(), "webhook b") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Run: %v", err)
	}
	if got := strings.Join(r.paths(), ","); got != "/a,/b" {
		t.Fatalf("calls %s, want /a,/b (in order, only the type, stop at the failing gate)", got)
	}
}

func TestRunNotificationsAllCalled(t *testing.T) {
	r := newRecorder(t)
	r.status["/n1"] = http.StatusInternalServerError
	r.status["/n3"] = http.StatusBadGateway
	hooks := []meshv1alpha1.CanaryWebhook{r.hook("n1", meshv1alpha1.WebhookRollback, "/n1"), r.hook("n2", meshv1alpha1.WebhookRollback, "/n2"), r.hook("n3", meshv1alpha1.WebhookRollback, "/n3")}
	err := (&Caller{}).Run(context.Background(), hooks, meshv1alpha1.WebhookRollback, payload)
	if err == nil || !strings.Contains(err.Error(), "webhook n1") || !strings.Contains(err.Error(), "webhook n3") {
		t.Fatalf("Run: %v", err)
	}
	if got := strings.Join(r.paths(), ","); got != "/n1,/n2,/n3" {
		t.Fatalf("calls %s", got)
	}
}

func TestRunNone(t *testing.T) {
	r := newRecorder(t)
	if err := (&Caller{}).Run(context.Background(), []meshv1alpha1.CanaryWebhook{r.hook("x", meshv1alpha1.WebhookEvent, "/x")}, meshv1alpha1.WebhookConfirmRollout, payload); err != nil {
		t.Fatal(err)
	}
	if err := (&Caller{}).Run(context.Background(), nil, meshv1alpha1.WebhookEvent, payload); err != nil {
		t.Fatal(err)
	}
	if len(r.paths()) != 0 {
		t.Fatalf("called %v", r.paths())
	}
}

func TestKinds(t *testing.T) {
	gates := map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookConfirmRollout: true, meshv1alpha1.WebhookConfirmTrafficIncrease: true, meshv1alpha1.WebhookConfirmPromotion: true}
	notes := map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookPostRollout: true, meshv1alpha1.WebhookRollback: true, meshv1alpha1.WebhookEvent: true}
	for _, typ := range []meshv1alpha1.WebhookType{meshv1alpha1.WebhookPreRollout, meshv1alpha1.WebhookRollout, meshv1alpha1.WebhookConfirmRollout, meshv1alpha1.WebhookConfirmTrafficIncrease, meshv1alpha1.WebhookConfirmPromotion, meshv1alpha1.WebhookPostRollout, meshv1alpha1.WebhookRollback, meshv1alpha1.WebhookEvent} {
		if IsGate(typ) != gates[typ] {
			t.Errorf("IsGate(%s) = %v", typ, IsGate(typ))
		}
		if IsNotification(typ) != notes[typ] {
			t.Errorf("IsNotification(%s) = %v", typ, IsNotification(typ))
		}
	}
}

func TestRollbackRequested(t *testing.T) {
	r := newRecorder(t)
	r.status["/no"] = http.StatusNotFound
	r.status["/yes"] = http.StatusOK
	hooks := []meshv1alpha1.CanaryWebhook{r.hook("gate", meshv1alpha1.WebhookConfirmRollout, "/gate"), r.hook("no", meshv1alpha1.WebhookRollback, "/no"), r.hook("yes", meshv1alpha1.WebhookRollback, "/yes"), r.hook("later", meshv1alpha1.WebhookRollback, "/later")}
	name, err := (&Caller{}).RollbackRequested(context.Background(), hooks, payload)
	if name != "yes" || err != nil {
		t.Fatalf("RollbackRequested = %q, %v", name, err)
	}
	if got := strings.Join(r.paths(), ","); got != "/no,/yes" {
		t.Fatalf("calls %s", got)
	}
	name, err = (&Caller{}).RollbackRequested(context.Background(), hooks[:2], payload)
	if name != "" || err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("no rollback: %q, %v", name, err)
	}
	if name, err := (&Caller{}).RollbackRequested(context.Background(), nil, payload); name != "" || err != nil {
		t.Fatalf("no hooks: %q, %v", name, err)
	}
}
