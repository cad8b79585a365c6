package breakglass_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/test/testenv"
)

// overlapMesh creates, for one test, the injector and validator of an
// Istio mesh (fail-closed, unreachable) and the given enrolled namespaces;
// everything is removed when the test ends.
func overlapMesh(t *testing.T, c client.Client, suffix string, nss ...string) {
	t.Helper()
	ctx := context.Background()
	must(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}})))
	for _, n := range nss {
		must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n,
			Labels: map[string]string{"istio-injection": "enabled", "team": n}, Annotations: map[string]string{"note": n}}}))
	}
	inj1, _ := deadWebhook("rev.namespace.sidecar-injector.istio.io", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpIn, Values: []string{"default"}}}}, "pods")
	inj2, _ := deadWebhook("namespace.sidecar-injector.istio.io", &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}, "pods")
	_, val := deadWebhook("validation.istio.io", nil, "peerauthentications", "authorizationpolicies")
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + suffix},
		Webhooks: []admissionregistrationv1.MutatingWebhook{inj1, inj2}}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-validator-" + suffix},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{val}}
	must(t, c.Create(ctx, mwc))
	must(t, c.Create(ctx, vwc))
	t.Cleanup(func() {
		_ = c.Delete(ctx, mwc)
		_ = c.Delete(ctx, vwc)
		// envtest never finishes deleting a namespace: out of the mesh
		// first, so the package's other tests do not see it as a member.
		for _, n := range nss {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
			_ = c.Patch(ctx, ns, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"istio-injection":null}}}`)))
			_ = c.Delete(ctx, ns)
		}
	})
}

// scoped is a BreakGlass over the listed namespaces.
func scoped(name string, nss ...string) *meshv1alpha1.BreakGlass {
	return breakGlass(name, func(bg *meshv1alpha1.BreakGlass) {
		bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: nss}
	})
}

// notIns returns, per webhook of the test's configurations, the
// namespaces of the NotIn requirements on the namespace name, sorted.
func notIns(t *testing.T, c client.Client, suffix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	collect := func(cfg, hook string, sel *metav1.LabelSelector) {
		var vals []string
		if sel != nil {
			for _, e := range sel.MatchExpressions {
				if e.Key == incident.NamespaceNameLabel && e.Operator == metav1.LabelSelectorOpNotIn {
					vals = append(vals, strings.Join(e.Values, "+"))
				}
			}
		}
		slices.Sort(vals)
		out[cfg+"/"+hook] = strings.Join(vals, ",")
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	must(t, c.Get(ctx, client.ObjectKey{Name: "istio-sidecar-injector-" + suffix}, mwc))
	for _, w := range mwc.Webhooks {
		collect("mwc", w.Name, w.NamespaceSelector)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	must(t, c.Get(ctx, client.ObjectKey{Name: "istio-validator-" + suffix}, vwc))
	for _, w := range vwc.Webhooks {
		collect("vwc", w.Name, w.NamespaceSelector)
	}
	return out
}

// wantNotIns is notIns when the BreakGlasses over the given namespace
// groups are engaged.
func wantNotIns(groups ...string) map[string]string {
	slices.Sort(groups)
	v := strings.Join(groups, ",")
	return map[string]string{
		"mwc/rev.namespace.sidecar-injector.istio.io": v, "mwc/namespace.sidecar-injector.istio.io": v,
		"vwc/validation.istio.io": v,
	}
}

func permutations(xs []string) [][]string {
	if len(xs) <= 1 {
		return [][]string{slices.Clone(xs)}
	}
	var out [][]string
	for i := range xs {
		rest := append(slices.Clone(xs[:i]), xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{xs[i]}, p...))
		}
	}
	return out
}

// TestBreakGlassOverlap engages two and three BreakGlasses over different
// namespaces of one mesh, created and deleted in every order: each adds
// and removes only its own NotIn requirement, and the final webhooks and
// namespaces are byte for byte what they were before.
func TestBreakGlassOverlap(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	startManager(t, cfg, 0)
	scopes := map[string][]string{"bg-a": {"ov-a"}, "bg-b": {"ov-b1", "ov-b2"}, "bg-c": {"ov-c"}}
	overlapMesh(t, c, "ovl", "ov-a", "ov-b1", "ov-b2", "ov-c")
	before := snapshot(t, c)
	group := func(bg string) string { return strings.Join(scopes[bg], "+") }

	run := func(t *testing.T, create, del []string) {
		for i, name := range create {
			must(t, c.Create(ctx, scoped(name, scopes[name]...)))
			bg := waitPhase(t, c, name, meshv1alpha1.BreakGlassEngaged)
			if bg.Status.Record == nil || strings.Join(bg.Status.Record.Namespaces, "+") != group(name) {
				t.Fatalf("%s: status.record %+v", name, bg.Status.Record)
			}
			var gs []string
			for _, n := range create[:i+1] {
				gs = append(gs, group(n))
			}
			if got, want := notIns(t, c, "ovl"), wantNotIns(gs...); !mapsEqual(got, want) {
				t.Fatalf("after creating %v: webhooks %v, want %v", create[:i+1], got, want)
			}
		}
		for i, name := range del {
			must(t, c.Delete(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: name}}))
			waitGone(t, c, name)
			var gs []string
			for _, n := range del[i+1:] {
				gs = append(gs, group(n))
			}
			if got, want := notIns(t, c, "ovl"), wantNotIns(gs...); !mapsEqual(got, want) {
				t.Fatalf("after deleting %v: webhooks %v, want %v", del[:i+1], got, want)
			}
			for _, n := range scopes[name] {
				ns := &corev1.Namespace{}
				must(t, c.Get(ctx, client.ObjectKey{Name: n}, ns))
				if ns.Labels["istio-injection"] != "enabled" || ns.Annotations[incident.NamespaceAnnotation] != "" {
					t.Fatalf("namespace %s not restored after deleting %s: %v %v", n, name, ns.Labels, ns.Annotations)
				}
			}
		}
		if after := snapshot(t, c); after != before {
			t.Fatalf("create %v, delete %v: not restored exactly:\n%s", create, del, diff(before, after))
		}
	}
	for _, create := range permutations([]string{"bg-a", "bg-b"}) {
		for _, del := range permutations([]string{"bg-a", "bg-b"}) {
			t.Run(fmt.Sprintf("two: create %v delete %v", create, del), func(t *testing.T) { run(t, create, del) })
		}
	}
	for _, create := range permutations([]string{"bg-a", "bg-b", "bg-c"}) {
		for _, del := range permutations([]string{"bg-a", "bg-b", "bg-c"}) {
			t.Run(fmt.Sprintf("three: create %v delete %v", create, del), func(t *testing.T) { run(t, create, del) })
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestBreakGlassHeldNamespaceConflict: a second BreakGlass over a
// namespace another holds is Conflict naming it and changes nothing; it
// engages by itself once the first is gone; a whole-mesh BreakGlass next
// to a scoped one leaves it that namespace.
func TestBreakGlassHeldNamespaceConflict(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	startManager(t, cfg, 0)
	overlapMesh(t, c, "held", "hd-a", "hd-b")
	before := snapshot(t, c)

	must(t, c.Create(ctx, scoped("hd-first", "hd-a")))
	waitPhase(t, c, "hd-first", meshv1alpha1.BreakGlassEngaged)
	engaged := snapshot(t, c)

	must(t, c.Create(ctx, scoped("hd-second", "hd-a", "hd-b")))
	want := "False/Conflict: namespace hd-a is already held by BreakGlass hd-first; this BreakGlass holds nothing and changed nothing. " +
		"It engages by itself once the other is deleted and restored; or delete it and list in spec.scope.namespaces only namespaces no other BreakGlass holds"
	var second *meshv1alpha1.BreakGlass
	eventually(t, "hd-second Conflict", func() error {
		second = &meshv1alpha1.BreakGlass{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "hd-second"}, second))
		if got := cond(second, meshv1alpha1.EngagedCondition); got != want {
			return fmt.Errorf("Engaged %s", got)
		}
		return nil
	})
	if second.Status.Phase != meshv1alpha1.BreakGlassPending || second.Status.Record != nil || second.Status.RecordSecretRef != nil {
		t.Errorf("a refused BreakGlass reports phase %s, record %+v", second.Status.Phase, second.Status.Record)
	}
	if got := cond(second, meshv1alpha1.StalledCondition); !strings.HasPrefix(got, "True/Conflict: namespace hd-a is already held") {
		t.Errorf("Stalled %s", got)
	}
	if now := snapshot(t, c); now != engaged {
		t.Fatalf("the refused BreakGlass changed something:\n%s", diff(engaged, now))
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "breakglass-hd-second"}, &corev1.Secret{}); err == nil {
		t.Error("the refused BreakGlass wrote a record")
	}

	// The first goes: the second engages by itself, then restores exactly.
	must(t, c.Delete(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "hd-first"}}))
	waitGone(t, c, "hd-first")
	second = waitPhase(t, c, "hd-second", meshv1alpha1.BreakGlassEngaged)
	if strings.Join(second.Status.Record.Namespaces, ",") != "hd-a,hd-b" {
		t.Errorf("second holds %v", second.Status.Record.Namespaces)
	}
	must(t, c.Delete(ctx, second))
	waitGone(t, c, "hd-second")
	if after := snapshot(t, c); after != before {
		t.Fatalf("not restored exactly:\n%s", diff(before, after))
	}
}
