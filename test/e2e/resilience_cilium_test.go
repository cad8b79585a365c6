package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestCiliumResiliencePolicy runs ResiliencePolicies on the simulated
// cluster with Cilium installed by a MeshInstall from the real chart
// (Envoy on by default): a policy with Envoy settings becomes one
// CiliumEnvoyConfig; a timeout-only policy a GAMMA HTTPRoute; an
// algorithm-only policy the lb-l7 annotations on the user's Service, whose
// previous value is recorded. A real BreakGlass over the namespace lifts
// the fault, rate limit and outlier ejection; deleting it restores the
// CiliumEnvoyConfig exactly. Deleting the policies lets the garbage
// collector delete their outputs and gives the Service its annotations
// back.
func TestCiliumResiliencePolicy(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Cilium, cluster.GatewayAPI}}})
	dir := t.TempDir()
	charts.Stage(t, dir, charts.Chart{Name: charts.Cilium, Version: "1.19.5", Unpacked: true})
	c := harness.StartManager(t, sim.Config).Client
	start := time.Now()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
			Chart:  &meshv1alpha1.ChartSource{Path: dir},
			Values: &apiextensionsv1.JSON{Raw: []byte(`{"k8sServiceHost":"127.0.0.1","k8sServicePort":6443}`)}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "cilium", 55*time.Second, "Cilium Ready", ready)
	t.Logf("Cilium 1.19.5 Ready in %s", time.Since(start).Round(10*time.Millisecond))

	const ns = "shop"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"api", "web", "search"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
		if name == "web" {
			svc.Annotations = map[string]string{"service.cilium.io/lb-l7-algorithm": "random"}
		}
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	policy := func(name, svc string, edit func(*meshv1alpha1.ResiliencePolicySpec)) *meshv1alpha1.ResiliencePolicy {
		rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: meshv1alpha1.ResiliencePolicySpec{TargetRef: meshv1alpha1.ServiceReference{Name: svc}}}
		edit(&rp.Spec)
		if err := c.Create(ctx, rp); err != nil {
			t.Fatal(err)
		}
		return rp
	}
	envoy := policy("api", "api", func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxConnections: ptrInt32(100)}
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptrInt32(5)}
		s.FaultInjection = &meshv1alpha1.FaultInjection{Delay: &meshv1alpha1.FaultDelay{FixedDelay: metav1.Duration{Duration: time.Second}, Percent: 5}}
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: metav1.Duration{Duration: time.Second}}}
		s.Timeouts = &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 10 * time.Second}}
	})
	lb := policy("web", "web", func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}
	})
	timeout := policy("search", "search", func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 3 * time.Second}}
	})
	for _, rp := range []*meshv1alpha1.ResiliencePolicy{envoy, lb, timeout} {
		harness.Eventually(t, 30*time.Second, "policy "+rp.Name+" Ready", func() error { return rpReady(c, rp) })
	}
	before := cecSpec(t, c, ns, "api")
	for _, want := range []string{"envoy.filters.http.fault", "envoy.filters.http.local_ratelimit", `"consecutive_5xx":5`, `"max_connections":100`, `"timeout":"10s"`} {
		if !strings.Contains(before, want) {
			t.Fatalf("CiliumEnvoyConfig api lacks %s: %s", want, before)
		}
	}
	if a := serviceAnnotations(t, c, ns, "web"); a["service.cilium.io/lb-l7"] != "enabled" || a["service.cilium.io/lb-l7-algorithm"] != "least_request" {
		t.Fatalf("Service web annotations %v", a)
	}
	hr := &gatewayv1.HTTPRoute{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "search"}, hr); err != nil || *hr.Spec.Rules[0].Timeouts.Request != "3s" {
		t.Fatalf("HTTPRoute search: %+v %v", hr.Spec, err)
	}

	// A BreakGlass over the namespace lifts what can block traffic.
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "cilium-envoy-outage"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "Envoy rejecting requests (INC-12)",
			Target: meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "cilium"}},
			Scope:  &meshv1alpha1.BreakGlassScope{Namespaces: []string{ns}}}}
	if err := c.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	engaged := time.Now()
	waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
	harness.Eventually(t, 30*time.Second, "fault, rate limit and outlier ejection lifted", func() error {
		spec := cecSpec(t, c, ns, "api")
		if strings.Contains(spec, "fault") || strings.Contains(spec, "ratelimit") || strings.Contains(spec, "outlier_detection") || !strings.Contains(spec, `"max_connections":100`) {
			return fmt.Errorf("CiliumEnvoyConfig %s", spec)
		}
		return nil
	})
	t.Logf("relaxed %s after the BreakGlass was created", time.Since(engaged).Round(10*time.Millisecond))
	if err := c.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitGoneBG(t, c, bg)
	harness.Eventually(t, 30*time.Second, "CiliumEnvoyConfig restored exactly", func() error {
		if got := cecSpec(t, c, ns, "api"); got != before {
			return fmt.Errorf("CiliumEnvoyConfig %s", got)
		}
		return rpReady(c, envoy)
	})

	// Deleting the policies: the garbage collector deletes the owned
	// outputs, the finalizer gives the Service its annotations back.
	for _, rp := range []*meshv1alpha1.ResiliencePolicy{envoy, lb, timeout} {
		if err := c.Delete(ctx, rp); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 60*time.Second, "outputs gone, annotations restored", func() error {
		if spec := cecSpec(t, c, ns, "api"); spec != "" {
			return fmt.Errorf("CiliumEnvoyConfig still there")
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "search"}, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("HTTPRoute search: %v", err)
		}
		a := serviceAnnotations(t, c, ns, "web")
		if _, on := a["service.cilium.io/lb-l7"]; on || a["service.cilium.io/lb-l7-algorithm"] != "random" {
			return fmt.Errorf("Service web annotations %v", a)
		}
		return nil
	})
	t.Logf("done in %s", time.Since(start).Round(10*time.Millisecond))
}

func rpReady(c client.Client, rp *meshv1alpha1.ResiliencePolicy) error {
	cur := &meshv1alpha1.ResiliencePolicy{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(rp), cur); err != nil {
		return err
	}
	r := apimeta.FindStatusCondition(cur.Status.Conditions, meshv1alpha1.ReadyCondition)
	if r == nil || r.Status != metav1.ConditionTrue || cur.Status.ObservedGeneration != cur.Generation {
		return fmt.Errorf("Ready %+v", r)
	}
	return nil
}

// cecSpec returns CiliumEnvoyConfig ns/name's spec as JSON, "" when absent.
func cecSpec(t *testing.T, c client.Client, ns, name string) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("cilium.io/v2")
	u.SetKind("CiliumEnvoyConfig")
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); apierrors.IsNotFound(err) {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func serviceAnnotations(t *testing.T, c client.Client, ns, name string) map[string]string {
	t.Helper()
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	return svc.Annotations
}

func ptrInt32(v int32) *int32 { return &v }
