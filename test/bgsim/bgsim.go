// Package bgsim plays the BreakGlass controller's side of the coverage
// contract (internal/incident) in the tests of the controllers that
// respect it, so they run without the BreakGlass controller: it creates an
// active BreakGlass, detaches a namespace (injection label off, coverage
// annotation on) and, on Release, puts the namespace back and marks the
// BreakGlass Restored.
package bgsim

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
)

// Engaged is a simulated BreakGlass covering one namespace.
type Engaged struct {
	t         testing.TB
	c         client.Client
	name, ns  string
	label     string
	prevLabel string
}

// Engage creates BreakGlass name for provider in phase Engaged and detaches
// namespace ns as the BreakGlass controller does: the injection label is
// removed and the coverage annotation set.
func Engage(t testing.TB, c client.Client, name string, provider meshv1alpha1.Provider, ns, label string) *Engaged {
	t.Helper()
	ctx := context.Background()
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "simulated outage", Target: meshv1alpha1.BreakGlassTarget{Provider: provider}}}
	must(t, c.Create(ctx, bg))
	bg.Status.Phase, bg.Status.Provider = meshv1alpha1.BreakGlassEngaged, provider
	must(t, c.Status().Update(ctx, bg))
	nsObj := &corev1.Namespace{}
	must(t, c.Get(ctx, client.ObjectKey{Name: ns}, nsObj))
	e := &Engaged{t: t, c: c, name: name, ns: ns, label: label, prevLabel: nsObj.Labels[label]}
	delete(nsObj.Labels, label)
	if nsObj.Annotations == nil {
		nsObj.Annotations = map[string]string{}
	}
	nsObj.Annotations[incident.NamespaceAnnotation] = name
	must(t, c.Update(ctx, nsObj))
	return e
}

// Release restores the namespace's label, removes the coverage annotation
// and marks the BreakGlass Restored.
func (e *Engaged) Release() {
	e.t.Helper()
	ctx := context.Background()
	nsObj := &corev1.Namespace{}
	must(e.t, e.c.Get(ctx, client.ObjectKey{Name: e.ns}, nsObj))
	if nsObj.Labels == nil {
		nsObj.Labels = map[string]string{}
	}
	nsObj.Labels[e.label] = e.prevLabel
	delete(nsObj.Annotations, incident.NamespaceAnnotation)
	must(e.t, e.c.Update(ctx, nsObj))
	bg := &meshv1alpha1.BreakGlass{}
	must(e.t, e.c.Get(ctx, client.ObjectKey{Name: e.name}, bg))
	bg.Status.Phase = meshv1alpha1.BreakGlassRestored
	must(e.t, e.c.Status().Update(ctx, bg))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
