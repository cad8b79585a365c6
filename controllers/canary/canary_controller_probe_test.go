package canary

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
)

// countingServer serves h and counts the connections opened to it.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestAnalysesReuseConnections: the analyses of every Canary, interval
// after interval and across Reconcilers without their own Checker or
// Caller, reuse one connection per server when they run one at a time. A
// Checker made per reconcile opened (and left idle for 90 s) a new
// connection each interval: 1,000 Canaries exhausted the descriptors.
func TestAnalysesReuseConnections(t *testing.T) {
	prom, promConns := countingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`))
	})
	hook, hookConns := countingServer(t, func(http.ResponseWriter, *http.Request) {})
	one := "1"
	cn := &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: meshv1alpha1.CanarySpec{
		Analysis: meshv1alpha1.CanaryAnalysis{
			MetricsServer: &meshv1alpha1.MetricsServer{Address: prom.URL},
			Webhooks:      []meshv1alpha1.CanaryWebhook{{Name: "load", Type: meshv1alpha1.WebhookRollout, URL: hook.URL}},
			Metrics:       []meshv1alpha1.CanaryMetric{{Name: "ok", Query: "up", ThresholdRange: meshv1alpha1.ThresholdRange{Min: &one}}},
		}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		r := &Reconciler{} // a Reconciler per pass: the pools are shared anyway
		p := &probe{ctx: ctx, r: r, cn: cn, target: analysis.Target{Namespace: "shop", Workload: "web", Service: "web", Interval: time.Second}}
		if res := p.Analyse(); res.Failed {
			t.Fatalf("interval %d failed: %s", i, res.Message)
		}
	}
	if n := promConns.Load(); n != 1 {
		t.Errorf("20 analyses opened %d connections to the metrics server, want 1", n)
	}
	if n := hookConns.Load(); n != 1 {
		t.Errorf("20 analyses opened %d connections to the rollout webhook, want 1", n)
	}
}
