package promreal

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestCanaryOnRealPrometheus delivers canaries on the simulated cluster
// with the Canary controller (test/harness) analysing against the
// in-process Prometheus: on Istio, Linkerd and Cilium a canary whose
// exporter traffic is healthy is promoted, and one whose traffic fails is
// rolled back, its message quoting the value Prometheus computed from what
// the exporter served (80% success).
func TestCanaryOnRealPrometheus(t *testing.T) {
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{}})
	healthy := func(ns string) Workload {
		return Workload{Namespace: ns, Name: "web", Requests: 200, Errors: 1, Latency: 42 * time.Millisecond}
	}
	exp := StartExporter(t, healthy("rp-istio"), healthy("rp-linkerd"), healthy("rp-cilium"),
		Workload{Namespace: "rp-fail", Name: "web", Requests: 200, Errors: 40, Latency: 42 * time.Millisecond})
	prom := Start(t, time.Second, exp.Addr)
	c := harness.StartManager(t, sim.Config).Client

	type canary struct {
		ns      string
		labels  map[string]string
		ann     map[string]string
		p       meshv1alpha1.Provider
		promote bool
	}
	cases := []canary{
		{ns: "rp-istio", labels: map[string]string{"istio-injection": "enabled"}, p: meshv1alpha1.ProviderIstio, promote: true},
		{ns: "rp-linkerd", ann: map[string]string{"linkerd.io/inject": "enabled"}, p: meshv1alpha1.ProviderLinkerd, promote: true},
		{ns: "rp-cilium", p: meshv1alpha1.ProviderCilium, promote: true},
		{ns: "rp-fail", labels: map[string]string{"istio-injection": "enabled"}, p: meshv1alpha1.ProviderIstio},
	}
	for _, cc := range cases {
		create(t, c, cc.ns, cc.labels, cc.ann, spec(prom.URL, cc.p))
	}
	for _, cc := range cases {
		wait(t, c, cc.ns, "Initialized", func(cn *meshv1alpha1.Canary) bool { return cn.Status.Phase == meshv1alpha1.CanaryPhaseInitialized })
	}
	for _, cc := range cases {
		newRevision(t, c, cc.ns)
	}
	for _, cc := range cases {
		if cc.promote {
			cn := wait(t, c, cc.ns, "Succeeded", func(cn *meshv1alpha1.Canary) bool { return cn.Status.Phase == meshv1alpha1.CanaryPhaseSucceeded })
			if cn.Status.Provider != cc.p || primaryImage(t, c, cc.ns) != "example.invalid/app:2" {
				t.Errorf("%s: promoted on %s with primary %s", cc.ns, cn.Status.Provider, primaryImage(t, c, cc.ns))
			}
			continue
		}
		cn := wait(t, c, cc.ns, "Failed", func(cn *meshv1alpha1.Canary) bool { return cn.Status.Phase == meshv1alpha1.CanaryPhaseFailed })
		if !strings.Contains(cn.Status.Message, "request-success-rate") || !strings.Contains(cn.Status.Message, "value 80 is below min 99") ||
			cn.Status.CanaryWeight != 0 || primaryImage(t, c, cc.ns) != "example.invalid/app:1" {
			t.Errorf("%s: after rollback: phase %s weight %d message %q primary %s", cc.ns, cn.Status.Phase, cn.Status.CanaryWeight, cn.Status.Message, primaryImage(t, c, cc.ns))
		}
	}
}

func spec(promURL string, p meshv1alpha1.Provider) meshv1alpha1.CanarySpec {
	// A 10s window over 1s scrapes: rate() has several samples from the
	// first seconds on, while the analysis runs every second.
	window := &metav1.Duration{Duration: 10 * time.Second}
	s := meshv1alpha1.CanarySpec{
		TargetRef: meshv1alpha1.CanaryTargetReference{Name: "web"},
		Service:   meshv1alpha1.CanaryService{Port: 8080},
		Strategy:  meshv1alpha1.StrategyCanary,
		Analysis: meshv1alpha1.CanaryAnalysis{
			Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
			StepWeight: ptr[int32](50), MaxWeight: ptr[int32](100),
			MetricsServer: &meshv1alpha1.MetricsServer{Address: promURL},
			Metrics: []meshv1alpha1.CanaryMetric{
				{Name: "request-success-rate", Interval: window, ThresholdRange: meshv1alpha1.ThresholdRange{Min: ptr("99")}},
				{Name: "request-duration", Interval: window, ThresholdRange: meshv1alpha1.ThresholdRange{Max: ptr("500")}},
			},
		},
	}
	if p == meshv1alpha1.ProviderCilium {
		s.Provider = p
	}
	return s
}

func create(t *testing.T, c client.Client, ns string, labels, ann map[string]string, s meshv1alpha1.CanarySpec) {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels, Annotations: ann}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}}}}},
		&meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: s},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func wait(t *testing.T, c client.Client, ns, what string, ok func(*meshv1alpha1.Canary) bool) *meshv1alpha1.Canary {
	t.Helper()
	cn := &meshv1alpha1.Canary{}
	harness.Eventually(t, 90*time.Second, ns+"/web "+what, func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, cn); err != nil {
			return err
		}
		if !ok(cn) {
			return fmt.Errorf("phase %s weight %d failed checks %d: %s", cn.Status.Phase, cn.Status.CanaryWeight, cn.Status.FailedChecks, cn.Status.Message)
		}
		return nil
	})
	return cn
}

func newRevision(t *testing.T, c client.Client, ns string) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, "new revision of "+ns+"/web", func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "example.invalid/app:2"
		return c.Update(context.Background(), d)
	})
}

func primaryImage(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web-primary"}, d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}
