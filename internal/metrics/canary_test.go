package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestCanaryAnalysisMetrics(t *testing.T) {
	t.Cleanup(func() { DeleteCanary("shop", "checkout"); DeleteCanary("shop", "cart") })
	RecordCheck("shop", "checkout", "request-success-rate", 99.5, true)
	RecordCheck("shop", "checkout", "request-success-rate", 97, false)
	RecordCheck("shop", "checkout", "request-duration", math.NaN(), false)
	RecordCheck("shop", "cart", "request-duration", 120, true)
	RecordWebhook("shop", "checkout", "confirm-promotion", errors.New("403"))
	RecordWebhook("shop", "checkout", "confirm-promotion", nil)
	RecordWebhook("shop", "checkout", meshv1alpha1.WebhookType("rollout"), nil)

	if v := testutil.ToFloat64(CanaryMetricValue.WithLabelValues("shop", "checkout", "request-success-rate")); v != 97 {
		t.Fatalf("last value %v, want 97", v)
	}
	if v := testutil.ToFloat64(CanaryMetricValue.WithLabelValues("shop", "checkout", "request-duration")); !math.IsNaN(v) {
		t.Fatalf("no-data value %v, want NaN", v)
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"shop", "checkout", "request-success-rate", "passed"}, 1},
		{[]string{"shop", "checkout", "request-success-rate", "failed"}, 1},
		{[]string{"shop", "checkout", "request-duration", "failed"}, 1},
		{[]string{"shop", "cart", "request-duration", "passed"}, 1},
	} {
		if v := testutil.ToFloat64(CanaryMetricChecks.WithLabelValues(c.labels...)); v != c.want {
			t.Errorf("checks %v = %v, want %v", c.labels, v, c.want)
		}
	}
	want := `
# HELP meshplane_canary_webhook_calls_total Webhook calls of a Canary, by webhook type and result (passed, failed).
# TYPE meshplane_canary_webhook_calls_total counter
meshplane_canary_webhook_calls_total{canary="checkout",namespace="shop",result="failed",type="confirm-promotion"} 1
meshplane_canary_webhook_calls_total{canary="checkout",namespace="shop",result="passed",type="confirm-promotion"} 1
meshplane_canary_webhook_calls_total{canary="checkout",namespace="shop",result="passed",type="rollout"} 1
`
	// Read back through controller-runtime's registry: what /metrics serves.
	if err := testutil.GatherAndCompare(ctrlmetrics.Registry, strings.NewReader(want), "meshplane_canary_webhook_calls_total"); err != nil {
		t.Fatal(err)
	}

	DeleteCanary("shop", "checkout")
	if n := testutil.CollectAndCount(CanaryMetricChecks); n != 1 {
		t.Fatalf("after DeleteCanary: %d check series, want cart's 1", n)
	}
	if n := testutil.CollectAndCount(CanaryMetricValue); n != 1 {
		t.Fatalf("after DeleteCanary: %d value series, want 1", n)
	}
	if n := testutil.CollectAndCount(CanaryWebhookCalls); n != 0 {
		t.Fatalf("after DeleteCanary: %d webhook series", n)
	}
}

func TestSetCanaryTransitions(t *testing.T) {
	t.Cleanup(func() { DeleteCanary("shop", "pay") })
	get := func(phase meshv1alpha1.CanaryPhase) float64 {
		return testutil.ToFloat64(CanaryPhaseTransitions.WithLabelValues("shop", "pay", string(phase)))
	}
	SetCanary("shop", "pay", 0, meshv1alpha1.CanaryPhaseProgressing) // first seen: remembered only
	SetCanary("shop", "pay", 10, meshv1alpha1.CanaryPhaseProgressing)
	SetCanary("shop", "pay", 0, meshv1alpha1.CanaryPhaseFailed)
	SetCanary("shop", "pay", 0, meshv1alpha1.CanaryPhaseFailed)
	SetCanary("shop", "pay", 0, "")
	SetCanary("shop", "pay", 10, meshv1alpha1.CanaryPhaseProgressing)
	SetCanary("shop", "pay", 0, meshv1alpha1.CanaryPhaseFailed)
	if v := get(meshv1alpha1.CanaryPhaseFailed); v != 2 {
		t.Fatalf("Failed transitions %v, want 2", v)
	}
	if v := get(meshv1alpha1.CanaryPhaseProgressing); v != 1 {
		t.Fatalf("Progressing transitions %v, want 1 (the first observation is not a transition)", v)
	}
	// The gauges stay with the Collector: the canary metrics register
	// beside it without a clash of names.
	reg := prometheus.NewRegistry()
	if err := reg.Register(NewCollector(nil)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []prometheus.Collector{CanaryMetricValue, CanaryMetricChecks, CanaryPhaseTransitions, CanaryWebhookCalls} {
		if err := reg.Register(c); err != nil {
			t.Fatalf("canary metric clashes with the Collector: %v", err)
		}
	}
	DeleteCanary("shop", "pay")
	SetCanary("shop", "pay", 0, meshv1alpha1.CanaryPhaseInitializing) // remembered afresh after deletion
	if n := testutil.CollectAndCount(CanaryPhaseTransitions); n != 0 {
		t.Fatalf("%d transition series after DeleteCanary", n)
	}
}
