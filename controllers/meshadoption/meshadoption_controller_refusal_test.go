package meshadoption_test

import (
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestRefusals: a missing MeshInstall, a Cilium install and Ambient on a
// sidecar install are Stalled with a message naming the field and the fix,
// and no namespace is labelled.
func TestRefusals(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client
	readyInstall(t, c, "cilium", meshv1alpha1.ProviderCilium, "")
	readyInstall(t, c, "istio-sc", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileSidecar)
	app(t, c, "ref-1", nil)
	for _, tc := range []struct {
		name, mi string
		mode     meshv1alpha1.Profile
		reason   string
		msg      string
	}{
		{"missing", "nope", "", meshv1alpha1.ReferenceNotFoundReason, "spec.meshInstallRef names MeshInstall nope, which does not exist; create it or fix the reference"},
		{"cilium", "cilium", "", meshv1alpha1.UnsupportedFeatureReason, "MeshInstall cilium runs Cilium, which serves every namespace as the CNI once installed"},
		{"ambient-on-sidecar", "istio-sc", meshv1alpha1.ProfileAmbient, meshv1alpha1.UnsupportedFeatureReason,
			"spec.mode is Ambient but MeshInstall istio-sc installs Istio with profile Sidecar, without ztunnel: set the MeshInstall's spec.profile to Ambient, or spec.mode to Sidecar"},
	} {
		ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "ref-" + tc.name},
			Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: tc.mi}, Mode: tc.mode, Namespaces: []string{"ref-1"}}}
		testenv.Must(t, c.Create(ctx, ma))
		got := waitAdoption(t, c, ma.Name, "Stalled", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
			return condIs(ma, meshv1alpha1.StalledCondition, "True", tc.reason)
		})
		if msg := apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.StalledCondition).Message; !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q, want %q", tc.name, msg, tc.msg)
		}
	}
	if ns := nsOf(t, c, "ref-1"); ns.Annotations[adoption.OwnerAnnotation] != "" || len(ns.Labels) > 1 {
		t.Fatalf("a refused adoption labelled ref-1: %v %v", ns.Labels, ns.Annotations)
	}
}

// TestBreakGlassPauses: an active BreakGlass on the mesh pauses the
// adoption (phase Paused, BreakGlassActive, nothing labelled); once it is
// gone the waves run.
func TestBreakGlassPauses(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client
	readyInstall(t, c, "linkerd", meshv1alpha1.ProviderLinkerd, "")
	app(t, c, "bg-1", nil)
	testenv.MarkAvailable(t, c, "bg-1")
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "incident"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "INC-1 mesh outage", Target: meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "linkerd"}}}}
	testenv.Must(t, c.Create(ctx, bg))
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "bg"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "linkerd"}, Namespaces: []string{"bg-1"},
			Waves: meshv1alpha1.AdoptionWaves{RestartWorkloads: new(bool)}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, "bg", "paused by the BreakGlass", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.BreakGlassActiveCondition, "True", meshv1alpha1.BreakGlassActiveReason)
	})
	if got.Status.Phase != meshv1alpha1.AdoptionPaused || len(got.Status.Waves) != 0 {
		t.Fatalf("while the BreakGlass is active: %+v", got.Status)
	}
	if ns := nsOf(t, c, "bg-1"); ns.Annotations["linkerd.io/inject"] != "" {
		t.Fatalf("enrolled during a BreakGlass: %v", ns.Annotations)
	}
	testenv.Must(t, c.Delete(ctx, bg))
	// Without restarts, the Linkerd wave is the annotation alone.
	waitAdoption(t, c, "bg", "Ready", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.ReadyCondition, "True", "")
	})
	if ns := nsOf(t, c, "bg-1"); ns.Annotations["linkerd.io/inject"] != "enabled" {
		t.Fatalf("not enrolled after the BreakGlass: %v", ns.Annotations)
	}
	if apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.BreakGlassActiveCondition) == nil {
		t.Fatal("no BreakGlassActive condition recorded")
	}
}
