package e2e

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestResiliencePolicyLinkerd runs a ResiliencePolicy on the simulated
// cluster with the real Linkerd charts installed by a MeshInstall
// (edge-26.1.1, so every annotation's version gate holds): the policy
// becomes annotations of the user's Service, next to the user's own; a
// BreakGlass over the namespace gives outlier ejection back (the user's
// previous value returns) and deleting it sets the policy's again; deleting
// the policy leaves the Service's annotations exactly as the user wrote
// them. Applying the policy restarts no pod.
func TestResiliencePolicyLinkerd(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	dir := t.TempDir()
	charts.StageLinkerd(t, dir, "2026.1.1")
	c := harness.StartManager(t, sim.Config).Client
	start := time.Now()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
			Chart: &meshv1alpha1.ChartSource{Path: dir}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "linkerd", 3*time.Minute, "Linkerd Ready", ready)

	const ns = "shop"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}); err != nil {
		t.Fatal(err)
	}
	makeAppsIn(t, c, ns, 1)
	user := map[string]string{"balancer.linkerd.io/failure-accrual-consecutive-max-failures": "9", "owner": "team-shop"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: maps.Clone(user)},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	pods := podNames(t, c, ns)

	three := int32(3)
	rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{TargetRef: meshv1alpha1.ServiceReference{Name: "web"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: &three, BaseEjectionTime: &metav1.Duration{Duration: 2 * time.Minute}},
			Retries: &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 2,
				PerTryTimeout: &metav1.Duration{Duration: 1500 * time.Millisecond}, RetryOn: []meshv1alpha1.RetryOn{"GatewayError"}}},
			Timeouts: &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 10 * time.Second}, Idle: &metav1.Duration{Duration: time.Minute}}}}
	if err := c.Create(ctx, rp); err != nil {
		t.Fatal(err)
	}
	enforced := map[string]string{
		"balancer.linkerd.io/failure-accrual":                          "consecutive",
		"balancer.linkerd.io/failure-accrual-consecutive-max-failures": "3",
		"balancer.linkerd.io/failure-accrual-consecutive-min-penalty":  "2m",
		"balancer.linkerd.io/failure-accrual-consecutive-max-penalty":  "2m",
		"retry.linkerd.io/limit":                                       "2",
		"retry.linkerd.io/http":                                        "gateway-error",
		"retry.linkerd.io/timeout":                                     "1500ms",
		"timeout.linkerd.io/request":                                   "10s",
		"timeout.linkerd.io/idle":                                      "1m",
		"owner":                                                        "team-shop",
	}
	harness.Eventually(t, 30*time.Second, "policy Ready with its annotations", func() error {
		if err := resilienceReady(c, rp); err != nil {
			return err
		}
		return annotationsAre(c, ns, enforced)
	})
	if got := podNames(t, c, ns); !slices.Equal(got, pods) {
		t.Fatalf("pods changed when the policy applied: %v -> %v", pods, got)
	}
	cur := &meshv1alpha1.ResiliencePolicy{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(rp), cur); err != nil {
		t.Fatal(err)
	}
	for _, s := range cur.Status.Support {
		if s.Provider == meshv1alpha1.ProviderLinkerd && s.State != meshv1alpha1.FieldEnforced {
			t.Fatalf("Linkerd refuses %s on edge-26.1.1: %s", s.Field, s.Detail)
		}
	}

	// A BreakGlass over the namespace lifts outlier ejection only.
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "shop-errors"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "shop 5xx storm (INC-12)",
			Target: meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "linkerd"}},
			Scope:  &meshv1alpha1.BreakGlassScope{Namespaces: []string{ns}}}}
	if err := c.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
	relaxed := maps.Clone(enforced)
	for _, k := range []string{"balancer.linkerd.io/failure-accrual", "balancer.linkerd.io/failure-accrual-consecutive-min-penalty", "balancer.linkerd.io/failure-accrual-consecutive-max-penalty"} {
		delete(relaxed, k)
	}
	relaxed["balancer.linkerd.io/failure-accrual-consecutive-max-failures"] = "9"
	harness.Eventually(t, 30*time.Second, "outlier ejection lifted", func() error { return annotationsAre(c, ns, relaxed) })
	if err := c.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitGoneBG(t, c, bg)
	harness.Eventually(t, 30*time.Second, "outlier ejection back", func() error {
		if err := resilienceReady(c, rp); err != nil {
			return err
		}
		return annotationsAre(c, ns, enforced)
	})

	if err := c.Delete(ctx, rp); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the user's annotations back, policy gone", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(rp), &meshv1alpha1.ResiliencePolicy{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("policy: %v", err)
		}
		return annotationsAre(c, ns, user)
	})
	t.Logf("done in %s", time.Since(start).Round(10*time.Millisecond))
}

// resilienceReady reports whether rp is Ready at its current generation.
func resilienceReady(c client.Client, rp *meshv1alpha1.ResiliencePolicy) error {
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

// annotationsAre checks that Service ns/web carries exactly want.
func annotationsAre(c client.Client, ns string, want map[string]string) error {
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc); err != nil {
		return err
	}
	if !maps.Equal(svc.Annotations, want) {
		return fmt.Errorf("annotations %v, want %v", svc.Annotations, want)
	}
	return nil
}

// podNames lists the namespace's pods, sorted, once some exist.
func podNames(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var names []string
	harness.Eventually(t, 60*time.Second, "pods in "+ns, func() error {
		l := &corev1.PodList{}
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			return err
		}
		names = nil
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if len(names) == 0 {
			return fmt.Errorf("no pods yet")
		}
		return nil
	})
	slices.Sort(names)
	return names
}
