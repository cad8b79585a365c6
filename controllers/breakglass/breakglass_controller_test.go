package breakglass_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	bgctrl "github.com/meshplane/meshplane/controllers/breakglass"
	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

var (
	peerAuthGVK = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"}
	authzGVK    = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}
)

// deadWebhook returns a webhook entry calling an address nothing listens
// on, fail-closed: what a mesh's webhook looks like with its control plane
// down.
func deadWebhook(name string, sel *metav1.LabelSelector, resources ...string) (admissionregistrationv1.MutatingWebhook, admissionregistrationv1.ValidatingWebhook) {
	url := "https://127.0.0.1:1/" + name
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	group, version := "", "v1"
	if resources[0] != "pods" {
		group, version = "security.istio.io", "*"
	}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources},
	}}
	cc := admissionregistrationv1.WebhookClientConfig{URL: &url}
	return admissionregistrationv1.MutatingWebhook{Name: name, ClientConfig: cc, Rules: rules, FailurePolicy: &fail, SideEffects: &none,
			NamespaceSelector: sel, AdmissionReviewVersions: []string{"v1"}},
		admissionregistrationv1.ValidatingWebhook{Name: name, ClientConfig: cc, Rules: rules, FailurePolicy: &fail, SideEffects: &none,
			NamespaceSelector: sel, AdmissionReviewVersions: []string{"v1"}}
}

func TestBreakGlass(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	must(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}})))

	// An Istio mesh: three enrolled namespaces (sidecar, revision, ambient)
	// and one outside, Meshplane-style policies, a foreign one.
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled", "team": "a"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pay", Labels: map[string]string{"istio.io/rev": "1-28-1"}, Annotations: map[string]string{"note": "x"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "amb", Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	} {
		must(t, c.Create(ctx, ns))
	}
	owned := map[string]string{"app.kubernetes.io/managed-by": "meshplane", "meshplane.io/owner": "zerotrustpolicy.shop.web"}
	for _, o := range []string{
		`{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"web","namespace":"shop"},"spec":{"mtls":{"mode":"STRICT"}}}`,
		`{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"web","namespace":"shop"},"spec":{"action":"ALLOW","rules":[{"from":[{"source":{"namespaces":["pay"]}}]}]}}`,
		`{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"theirs","namespace":"pay"},"spec":{"mtls":{"mode":"STRICT"}}}`,
	} {
		u := &unstructured.Unstructured{}
		must(t, u.UnmarshalJSON([]byte(o)))
		if u.GetNamespace() == "shop" {
			u.SetLabels(owned)
		}
		must(t, c.Create(ctx, u))
	}
	must(t, c.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}}}}}))
	// The injector and the validator, fail-closed and unreachable.
	inj1, _ := deadWebhook("rev.namespace.sidecar-injector.istio.io", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpIn, Values: []string{"1-28-1"}}}}, "pods")
	inj2, _ := deadWebhook("namespace.sidecar-injector.istio.io", &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}, "pods")
	must(t, c.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{inj1, inj2}}))
	_, val := deadWebhook("validation.istio.io", nil, "peerauthentications", "authorizationpolicies")
	must(t, c.Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istiod-default-validator"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{val}}))
	// The dead webhooks would block the package's other tests.
	t.Cleanup(func() {
		_ = c.Delete(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"}})
		_ = c.Delete(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istiod-default-validator"}})
	})
	// With the validator down, nobody can edit Istio policies.
	pa := &unstructured.Unstructured{}
	pa.SetGroupVersionKind(peerAuthGVK)
	// The API server sees a new webhook configuration a moment after its
	// creation (CI once edited the policy in between).
	testenv.Eventually(t, testenv.DefaultTimeout, "the dead validating webhook blocks a policy edit (else the fixture is wrong)", func() error {
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, pa))
		if err := c.Patch(ctx, pa, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"x":"y"}}}`))); err == nil {
			return testenv.Errorf("the edit went through")
		}
		return nil
	})

	before := snapshot(t, c, peerAuthGVK, authzGVK)
	// The controller runs for these subtests; the last one restarts it.
	t.Run("running", func(t *testing.T) { testRunning(t, cfg, c, before) })
	t.Run("operator restarted while engaging and while restoring", func(t *testing.T) { testRestarted(t, cfg, c) })
}

// testRunning engages, restores and expires BreakGlasses with one
// controller running throughout.
func testRunning(t *testing.T, cfg *rest.Config, c client.Client, before string) {
	ctx := context.Background()
	pa := &unstructured.Unstructured{}
	pa.SetGroupVersionKind(peerAuthGVK)
	m := startManager(t, cfg, 0)

	t.Run("engage", func(t *testing.T) {
		must(t, c.Create(ctx, breakGlass("outage", func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Actions.RestartWorkloads = true
		})))
		bg := waitPhase(t, c, "outage", meshv1alpha1.BreakGlassEngaged)
		if cond(bg, meshv1alpha1.ReadyCondition)[:4] != "True" || cond(bg, meshv1alpha1.EngagedCondition)[:4] != "True" ||
			bg.Status.ObservedGeneration != bg.Generation || bg.Status.StartTime == nil || bg.Status.EngagedTime == nil {
			t.Fatalf("status: %+v", bg.Status)
		}
		if bg.Status.Provider != meshv1alpha1.ProviderIstio {
			t.Errorf("provider %q", bg.Status.Provider)
		}
		want := meshv1alpha1.BreakGlassCounts{Namespaces: 3, Webhooks: 2, Policies: 2, Workloads: 1}
		if bg.Status.Touched != want {
			t.Errorf("touched %+v, want %+v", bg.Status.Touched, want)
		}
		ref := bg.Status.RecordSecretRef
		if ref == nil || ref.Namespace != testenv.OperatorNamespace {
			t.Fatalf("recordSecretRef %+v", ref)
		}
		sec := &corev1.Secret{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, sec))
		if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != bg.UID {
			t.Errorf("record Secret owners %+v", sec.OwnerReferences)
		}
		if !strings.Contains(strings.Join(bg.Finalizers, ","), bgctrl.Finalizer) {
			t.Errorf("finalizers %v", bg.Finalizers)
		}

		for name, key := range map[string]string{"shop": "istio-injection", "pay": "istio.io/rev", "amb": "istio.io/dataplane-mode"} {
			ns := &corev1.Namespace{}
			must(t, c.Get(ctx, client.ObjectKey{Name: name}, ns))
			if _, ok := ns.Labels[key]; ok || ns.Annotations[incident.NamespaceAnnotation] != "outage" {
				t.Errorf("namespace %s: labels %v annotations %v", name, ns.Labels, ns.Annotations)
			}
			// The other controllers see the coverage.
			got, err := incident.ForNamespace(ctx, c, name)
			if err != nil || got == nil || got.Name != "outage" {
				t.Errorf("ForNamespace(%s) = %v, %v", name, got, err)
			}
		}
		plain := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "plain"}, plain))
		if plain.Annotations[incident.NamespaceAnnotation] != "" {
			t.Error("a namespace outside the mesh was covered")
		}
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "istio-sidecar-injector"}, mwc))
		for _, w := range mwc.Webhooks {
			last := w.NamespaceSelector.MatchExpressions[len(w.NamespaceSelector.MatchExpressions)-1]
			if *w.FailurePolicy != admissionregistrationv1.Ignore || last.Operator != metav1.LabelSelectorOpNotIn ||
				strings.Join(last.Values, ",") != "amb,pay,shop" {
				t.Errorf("webhook %s not neutralised: %v %+v", w.Name, *w.FailurePolicy, w.NamespaceSelector)
			}
		}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, pa))
		if mode, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode"); mode != "PERMISSIVE" {
			t.Errorf("PeerAuthentication mode %q", mode)
		}
		theirs := &unstructured.Unstructured{}
		theirs.SetGroupVersionKind(peerAuthGVK)
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "pay", Name: "theirs"}, theirs))
		if mode, _, _ := unstructured.NestedString(theirs.Object, "spec", "mtls", "mode"); mode != "STRICT" {
			t.Errorf("a foreign policy was relaxed without includeForeignPolicies: %q", mode)
		}
		d := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, d))
		if d.Spec.Template.Annotations[incident.RestartedAtAnnotation] == "" {
			t.Error("deployment not restarted")
		}
		eventually(t, "Events on the touched namespace", func() error {
			if evs := events(t, c, "default", "Namespace", "shop"); !hasEvent(evs, "Normal/BreakGlassEngaged") {
				return fmt.Errorf("events %v", evs)
			}
			return nil
		})
		if v := gauge(t, "Istio"); v != 1 {
			t.Errorf("meshplane_breakglass_active{provider=Istio} = %v", v)
		}
	})

	t.Run("no-op reconcile while engaged writes nothing", func(t *testing.T) {
		ic, writes := testenv.CachedClient(t, m.Manager)
		r := &bgctrl.Reconciler{Client: ic, Writer: ic, APIReader: m.GetAPIReader(), Registry: m.Registry,
			Events: m.EventRecorder("breakglass"), OperatorNamespace: testenv.OperatorNamespace}
		eventually(t, "cache current", func() error {
			bg := &meshv1alpha1.BreakGlass{}
			must(t, m.GetClient().Get(ctx, client.ObjectKey{Name: "outage"}, bg))
			if bg.Status.Phase != meshv1alpha1.BreakGlassEngaged {
				return fmt.Errorf("cache has phase %s", bg.Status.Phase)
			}
			return nil
		})
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "outage"}}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}
	})

	t.Run("restore exactly, keeping a field changed during the incident", func(t *testing.T) {
		// Someone opts the ambient namespace out by hand during the incident.
		ns := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "amb"}, ns))
		ns.Labels["istio.io/dataplane-mode"] = "none"
		must(t, c.Update(ctx, ns))

		must(t, c.Delete(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}}))
		waitGone(t, c, "outage")
		after := snapshot(t, c, peerAuthGVK, authzGVK)
		// Exactly one difference: the field someone else set, kept.
		wantAfter := strings.Replace(before, `"istio.io/dataplane-mode": "ambient"`, `"istio.io/dataplane-mode": "none"`, 1)
		if after != wantAfter {
			t.Fatalf("restore is not exact:\n%s", diff(wantAfter, after))
		}
		d := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, d))
		if _, ok := d.Spec.Template.Annotations[incident.RestartedAtAnnotation]; ok {
			t.Error("restart annotation not removed")
		}
		eventually(t, "conflict Event on the namespace", func() error {
			evs := events(t, c, "default", "Namespace", "amb")
			if !hasEvent(evs, "Warning/BreakGlassConflict") {
				return fmt.Errorf("events %v", evs)
			}
			return nil
		})
		err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "breakglass-outage"}, &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("record Secret not removed: %v", err)
		}
		if v := gauge(t, "Istio"); v != 0 {
			t.Errorf("meshplane_breakglass_active{provider=Istio} = %v after restore", v)
		}
		// Put the fixture back for the next subtests.
		must(t, c.Get(ctx, client.ObjectKey{Name: "amb"}, ns))
		ns.Labels["istio.io/dataplane-mode"] = "ambient"
		must(t, c.Update(ctx, ns))
	})

	t.Run("expiry restores and stays Restored with conflicts in status", func(t *testing.T) {
		must(t, c.Create(ctx, breakGlass("timed", func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: []string{"shop"}}
			bg.Spec.ExpiresAfter = &metav1.Duration{Duration: time.Hour}
		})))
		bg := waitPhase(t, c, "timed", meshv1alpha1.BreakGlassEngaged)
		if bg.Status.ExpiryTime == nil || bg.Status.ExpiryTime.Sub(bg.Status.StartTime.Time) != time.Hour {
			t.Fatalf("expiryTime %v startTime %v", bg.Status.ExpiryTime, bg.Status.StartTime)
		}
		// A scoped BreakGlass narrows the webhooks but leaves them fail-closed.
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "istio-sidecar-injector"}, mwc))
		if *mwc.Webhooks[0].FailurePolicy != admissionregistrationv1.Fail {
			t.Error("a scoped BreakGlass set failurePolicy Ignore")
		}
		ns := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "shop"}, ns))
		ns.Labels["istio-injection"] = "disabled"
		must(t, c.Update(ctx, ns))
		// Shorten the expiry: move the start time back and touch the spec.
		bg.Status.StartTime = &metav1.Time{Time: time.Now().Add(-2 * time.Hour)}
		must(t, c.Status().Update(ctx, bg))
		must(t, c.Get(ctx, client.ObjectKey{Name: "timed"}, bg))
		bg.Spec.Reason = "expired"
		must(t, c.Update(ctx, bg))
		bg = waitPhase(t, c, "timed", meshv1alpha1.BreakGlassRestored)
		if len(bg.Status.Conflicts) != 1 || bg.Status.Conflicts[0].Object != "Namespace/shop" ||
			bg.Status.Conflicts[0].Field != "metadata.labels[istio-injection]" || !strings.Contains(bg.Status.Conflicts[0].Message, `"disabled"`) {
			t.Fatalf("conflicts %+v", bg.Status.Conflicts)
		}
		// The restore finishes with the finalizer's removal, a metadata
		// patch apart from the status patch that says Restored.
		eventually(t, "restore-finalizer removed and Ready", func() error {
			must(t, c.Get(ctx, client.ObjectKey{Name: "timed"}, bg))
			if len(bg.Finalizers) != 0 || cond(bg, meshv1alpha1.ReadyCondition)[:4] != "True" {
				return fmt.Errorf("finalizers %v, Ready %s", bg.Finalizers, cond(bg, meshv1alpha1.ReadyCondition))
			}
			return nil
		})
		must(t, c.Get(ctx, client.ObjectKey{Name: "shop"}, ns))
		if ns.Labels["istio-injection"] != "disabled" || ns.Annotations[incident.NamespaceAnnotation] != "" {
			t.Fatalf("shop after expiry: %v %v", ns.Labels, ns.Annotations)
		}
		must(t, c.Delete(ctx, bg))
		waitGone(t, c, "timed")
		ns.Labels["istio-injection"] = "enabled"
		must(t, c.Update(ctx, ns))
		if after := snapshot(t, c, peerAuthGVK, authzGVK); after != before {
			t.Fatalf("not back to the fixture:\n%s", diff(before, after))
		}
	})

	t.Run("missing MeshInstall is Stalled", func(t *testing.T) {
		must(t, c.Create(ctx, breakGlass("nomesh", func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Target = meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "istio"}}
		})))
		bg := &meshv1alpha1.BreakGlass{}
		eventually(t, "Stalled", func() error {
			must(t, c.Get(ctx, client.ObjectKey{Name: "nomesh"}, bg))
			s := cond(bg, meshv1alpha1.StalledCondition)
			if !strings.HasPrefix(s, "True/ReferenceNotFound") || !strings.Contains(s, "MeshInstall istio") || bg.Status.ObservedGeneration != bg.Generation {
				return fmt.Errorf("Stalled %s", s)
			}
			return nil
		})
		if bg.Status.Phase != meshv1alpha1.BreakGlassPending || bg.Status.RecordSecretRef != nil {
			t.Errorf("phase %s record %v", bg.Status.Phase, bg.Status.RecordSecretRef)
		}
		must(t, c.Delete(ctx, bg))
		waitGone(t, c, "nomesh")
		if after := snapshot(t, c, peerAuthGVK, authzGVK); after != before {
			t.Fatalf("a stalled BreakGlass changed something:\n%s", diff(before, after))
		}
	})

	t.Run("foreign policies and pinned traffic", func(t *testing.T) {
		// The real TrafficSplit controller pins the split while the
		// BreakGlass covers its namespace, and unpins it after the restore.
		startManager(t, cfg, -1, trafficsplit.Setup)
		for _, name := range []string{"web", "web-v1", "web-v2"} {
			must(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "pay"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}})))
		}
		ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "pay"},
			Spec: meshv1alpha1.TrafficSplitSpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderIstio},
				Service:  meshv1alpha1.ServiceReference{Name: "web"},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
		must(t, c.Create(ctx, ts))
		splitState := func(want string, held bool) func() error {
			return func() error {
				got := &meshv1alpha1.TrafficSplit{}
				must(t, c.Get(ctx, client.ObjectKeyFromObject(ts), got))
				active := status.IsTrue(&got.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition)
				if got.Status.Weights != want || active != held || got.Status.ObservedGeneration != got.Generation {
					return fmt.Errorf("weights %q BreakGlassActive %v: %+v", got.Status.Weights, active, got.Status.Conditions)
				}
				return nil
			}
		}
		eventually(t, "TrafficSplit applied", splitState("web-v1=90,web-v2=10", false))
		must(t, c.Create(ctx, breakGlass("foreign", func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: []string{"pay"}}
			bg.Spec.Actions.IncludeForeignPolicies = true
		})))
		bg := waitPhase(t, c, "foreign", meshv1alpha1.BreakGlassEngaged)
		if bg.Status.Touched.Policies != 1 || bg.Status.Touched.TrafficRoutes != 1 || bg.Status.Touched.Webhooks != 2 {
			t.Errorf("touched %+v", bg.Status.Touched)
		}
		theirs := &unstructured.Unstructured{}
		theirs.SetGroupVersionKind(peerAuthGVK)
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "pay", Name: "theirs"}, theirs))
		if mode, _, _ := unstructured.NestedString(theirs.Object, "spec", "mtls", "mode"); mode != "PERMISSIVE" {
			t.Errorf("foreign PeerAuthentication mode %q with includeForeignPolicies", mode)
		}
		eventually(t, "TrafficSplit pinned to its stable backend", splitState("web-v1=100", true))
		eventually(t, "pinned Event on the TrafficSplit", func() error {
			if evs := events(t, c, "pay", "TrafficSplit", "web"); !hasEvent(evs, "Normal/BreakGlassPinned") {
				return fmt.Errorf("events %v", evs)
			}
			return nil
		})
		must(t, c.Delete(ctx, bg))
		waitGone(t, c, "foreign")
		eventually(t, "TrafficSplit unpinned", splitState("web-v1=90,web-v2=10", false))
		must(t, c.Delete(ctx, ts))
		if after := snapshot(t, c, peerAuthGVK, authzGVK); after != before {
			t.Fatalf("not restored:\n%s", diff(before, after))
		}
	})

	t.Run("workloads restarted in batches", func(t *testing.T) {
		for i := range 3 {
			name := fmt.Sprintf("api-%d", i)
			must(t, c.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "pay"},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "api:1"}}}}}}))
		}
		restarted := func() int {
			var list appsv1.DeploymentList
			must(t, c.List(ctx, &list, client.InNamespace("pay")))
			k := 0
			for _, d := range list.Items {
				if d.Spec.Template.Annotations[incident.RestartedAtAnnotation] != "" {
					k++
				}
			}
			return k
		}
		must(t, c.Create(ctx, breakGlass("batches", func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: []string{"pay"}}
			bg.Spec.Actions.RestartWorkloads = true
			bg.Spec.Actions.RestartBatchSize = 1
		})))
		seen := map[int]bool{}
		deadline := time.Now().Add(30 * time.Second)
		for !seen[3] && time.Now().Before(deadline) {
			seen[restarted()] = true
			time.Sleep(50 * time.Millisecond)
		}
		if !seen[1] || !seen[2] || !seen[3] {
			t.Fatalf("restart counts observed %v, want each batch of one in turn (1, 2, 3)", seen)
		}
		bg := waitPhase(t, c, "batches", meshv1alpha1.BreakGlassEngaged)
		if bg.Status.Touched.Workloads != 3 {
			t.Errorf("touched %+v", bg.Status.Touched)
		}
		must(t, c.Delete(ctx, bg))
		waitGone(t, c, "batches")
		if k := restarted(); k != 0 {
			t.Errorf("%d deployment(s) keep the restart annotation after the restore", k)
		}
		if after := snapshot(t, c, peerAuthGVK, authzGVK); after != before {
			t.Fatalf("not restored:\n%s", diff(before, after))
		}
	})

}

// testRestarted stops the operator half-way through engaging and through
// restoring; the next one finishes exactly.
func testRestarted(t *testing.T, cfg *rest.Config, c client.Client) {
	ctx := context.Background()
	const n = 24
	for i := range n {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%02d", i),
			Labels: map[string]string{"istio-injection": "enabled"}, Annotations: map[string]string{"owner": fmt.Sprint(i)}}}))
	}
	start := snapshot(t, c, peerAuthGVK, authzGVK)
	covered := func() (int, error) {
		var list corev1.NamespaceList
		if err := c.List(ctx, &list); err != nil {
			return 0, err
		}
		k := 0
		for _, ns := range list.Items {
			if ns.Annotations[incident.NamespaceAnnotation] == "restart" {
				k++
			}
		}
		return k, nil
	}
	// Each manager runs for one subtest and stops when it ends.
	t.Run("slow engaging stopped half-way", func(t *testing.T) {
		startManager(t, cfg, 5)
		must(t, c.Create(ctx, breakGlass("restart", func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}}
		})))
		eventually(t, "half-way through engaging", func() error {
			k, err := covered()
			if err != nil || k < 4 {
				return fmt.Errorf("%d covered, %v", k, err)
			}
			return nil
		})
	})
	if k, _ := covered(); k >= n+1 {
		t.Fatalf("engaging finished before the stop (%d covered); slow the writer further", k)
	}
	bg := &meshv1alpha1.BreakGlass{}
	t.Run("next operator engages the rest", func(t *testing.T) {
		startManager(t, cfg, 0)
		bg = waitPhase(t, c, "restart", meshv1alpha1.BreakGlassEngaged)
		if bg.Status.Touched.Namespaces != n+1 { // team-* and shop
			t.Errorf("touched %d namespaces, want %d", bg.Status.Touched.Namespaces, n+1)
		}
		var list corev1.NamespaceList
		must(t, c.List(ctx, &list))
		for _, ns := range list.Items {
			if _, ok := ns.Labels["istio-injection"]; ok {
				t.Errorf("namespace %s still labelled after the restart", ns.Name)
			}
		}
	})
	t.Run("slow restoring stopped half-way", func(t *testing.T) {
		startManager(t, cfg, 5)
		must(t, c.Delete(ctx, bg))
		eventually(t, "half-way through restoring", func() error {
			k, err := covered()
			if err != nil {
				return err
			}
			var list corev1.NamespaceList
			must(t, c.List(ctx, &list))
			labelled := 0
			for _, ns := range list.Items {
				if ns.Labels["istio-injection"] == "enabled" {
					labelled++
				}
			}
			if labelled < 4 || k == 0 {
				return fmt.Errorf("%d relabelled, %d still covered", labelled, k)
			}
			return nil
		})
	})
	startManager(t, cfg, 0)
	waitGone(t, c, "restart")
	if after := snapshot(t, c, peerAuthGVK, authzGVK); after != start {
		t.Fatalf("restore after restarts is not exact:\n%s", diff(start, after))
	}
}

func gauge(t *testing.T, provider string) float64 {
	var m dto.Metric
	must(t, metrics.BreakGlassActive.WithLabelValues(provider).Write(&m))
	return m.GetGauge().GetValue()
}
