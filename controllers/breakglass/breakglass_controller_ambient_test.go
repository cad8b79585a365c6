package breakglass_test

import (
	"context"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestBreakGlassAmbient: a BreakGlass takes an ambient namespace out of the
// mesh by removing istio.io/dataplane-mode and istio.io/use-waypoint (no
// restart), leaves a sidecar namespace's other labels alone, and restores
// both exactly when deleted.
func TestBreakGlassAmbient(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	must(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}})))
	amb := testenv.AmbientNamespace(t, c, map[string]string{"istio.io/use-waypoint": "waypoint", "team": "a"})
	side := testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled", "team": "b"})
	labels := func(ns string) map[string]string {
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		delete(n.Labels, "kubernetes.io/metadata.name")
		return n.Labels
	}
	beforeAmb, beforeSide := labels(amb), labels(side)
	// Namespaces outlive the test (envtest runs no namespace controller):
	// take them out of the mesh so the package's other BreakGlasses do not
	// count them.
	t.Cleanup(func() {
		for _, ns := range []string{amb, side} {
			n := &corev1.Namespace{}
			if c.Get(ctx, client.ObjectKey{Name: ns}, n) == nil {
				n.Labels = map[string]string{}
				_ = c.Update(ctx, n)
			}
		}
	})
	startManager(t, cfg, 0)

	name := "ambient-" + amb
	must(t, c.Create(ctx, breakGlass(name, func(bg *meshv1alpha1.BreakGlass) {
		bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: []string{amb, side}}
	})))
	waitPhase(t, c, name, meshv1alpha1.BreakGlassEngaged)
	if got := labels(amb); !maps.Equal(got, map[string]string{"team": "a"}) {
		t.Fatalf("ambient namespace labels while engaged: %v", got)
	}
	if got := labels(side); !maps.Equal(got, map[string]string{"team": "b"}) {
		t.Fatalf("sidecar namespace labels while engaged: %v", got)
	}

	must(t, c.Delete(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	waitGone(t, c, name)
	if got := labels(amb); !maps.Equal(got, beforeAmb) {
		t.Fatalf("ambient namespace not restored exactly: %v, want %v", got, beforeAmb)
	}
	if got := labels(side); !maps.Equal(got, beforeSide) {
		t.Fatalf("sidecar namespace not restored exactly: %v, want %v", got, beforeSide)
	}
}
