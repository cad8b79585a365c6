package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// istioOutage installs what Istio's injector looks like with istiod down:
// the istiod Service (a loopback ClusterIP with nothing behind it) and the
// fail-closed istio-sidecar-injector webhooks calling it.
func istioOutage(t *testing.T, c client.Client) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}))
	must(c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: "istio-system"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)}}}}))
	hook := func(name string, sel *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "istio-system", Name: "istiod", Path: ptr.To("/inject"), Port: ptr.To[int32](443)}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			NamespaceSelector:       sel,
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}
	}
	must(c.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector", Labels: map[string]string{"app": "sidecar-injector", "istio.io/rev": "default"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("rev.namespace.sidecar-injector.istio.io", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpIn, Values: []string{"default"}},
				{Key: "istio-injection", Operator: metav1.LabelSelectorOpDoesNotExist}}}),
			hook("namespace.sidecar-injector.istio.io", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "istio-injection", Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled"}}}}),
		},
	}))
}

// meshState renders the fields a BreakGlass may change: labels and
// annotations of every namespace and webhooks[] of every webhook
// configuration.
func meshState(t *testing.T, c client.Client) string {
	t.Helper()
	out := map[string]any{}
	var nss corev1.NamespaceList
	if err := c.List(ctx, &nss); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		out["ns/"+ns.Name] = map[string]any{"labels": ns.Labels, "annotations": ns.Annotations}
	}
	var mw admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &mw); err != nil {
		t.Fatal(err)
	}
	for _, w := range mw.Items {
		out["mwc/"+w.Name] = w.Webhooks
	}
	var vw admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := c.List(ctx, &vw); err != nil {
		t.Fatal(err)
	}
	for _, w := range vw.Items {
		out["vwc/"+w.Name] = w.Webhooks
	}
	b, _ := json.MarshalIndent(out, "", " ")
	return string(b)
}

func podCount(t *testing.T, c client.Client, ns string) int {
	t.Helper()
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

// TestBreakGlassIstioOutage: with the injector fail-closed and istiod
// unreachable, a Deployment in a meshed namespace cannot create pods; a
// BreakGlass lets it; deleting the BreakGlass puts every label, annotation
// and webhook field back byte for byte (and the outage with it).
func TestBreakGlassIstioOutage(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	c := harness.StartManager(t, sim.Config).Client
	istioOutage(t, c)
	makeApps(t, c, []string{"shop", "cart"}, map[string]string{"istio-injection": "enabled"}, 2)
	makeApps(t, c, []string{"plain"}, nil, 1)

	harness.Eventually(t, 60*time.Second, "pods outside the mesh start", func() error { return allAvailable(c, []string{"plain"}) })
	time.Sleep(2 * time.Second)
	for _, ns := range []string{"shop", "cart"} {
		if n := podCount(t, c, ns); n != 0 {
			t.Fatalf("%d pod(s) created in %s with the injector down; the outage fixture is wrong", n, ns)
		}
	}
	before := meshState(t, c)

	start := time.Now()
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "istiod-down"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod unreachable (INC-42)", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
	if err := c.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 90*time.Second, "pods start in the meshed namespaces", func() error { return allAvailable(c, []string{"shop", "cart"}) })
	t.Logf("pods Available in the meshed namespaces %s after the BreakGlass was created", time.Since(start).Round(10*time.Millisecond))
	harness.Eventually(t, 30*time.Second, "Engaged", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(bg), bg); err != nil {
			return err
		}
		if bg.Status.Phase != meshv1alpha1.BreakGlassEngaged || bg.Status.Touched.Namespaces != 2 || bg.Status.Touched.Webhooks != 1 {
			return fmt.Errorf("phase %s touched %+v", bg.Status.Phase, bg.Status.Touched)
		}
		return nil
	})

	if err := c.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	restoreStart := time.Now()
	harness.Eventually(t, 60*time.Second, "BreakGlass restored and gone", func() error {
		err := c.Get(ctx, client.ObjectKeyFromObject(bg), bg)
		if err == nil {
			return fmt.Errorf("still there, phase %s", bg.Status.Phase)
		}
		return client.IgnoreNotFound(err)
	})
	t.Logf("restored in %s", time.Since(restoreStart).Round(10*time.Millisecond))
	if after := meshState(t, c); after != before {
		t.Fatalf("restore is not byte-for-byte:\nbefore %s\nafter  %s", before, after)
	}
	// The outage is back too: the injector is fail-closed again.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}}}
	if err := c.Create(ctx, pod); err == nil || !strings.Contains(err.Error(), "sidecar-injector.istio.io") {
		t.Fatalf("creating a pod in shop after the restore: %v, want the injector's failure", err)
	}
}
