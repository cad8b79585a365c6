package incident

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestActionsAndActive(t *testing.T) {
	off := false
	cases := []struct {
		name                       string
		phase                      meshv1alpha1.BreakGlassPhase
		actions                    meshv1alpha1.BreakGlassActions
		active, pin, relax, detach bool
	}{
		{"defaults engaged", meshv1alpha1.BreakGlassEngaged, meshv1alpha1.BreakGlassActions{}, true, true, true, true},
		{"pending counts as active", meshv1alpha1.BreakGlassPending, meshv1alpha1.BreakGlassActions{}, true, true, true, true},
		{"restoring is still active", meshv1alpha1.BreakGlassRestoring, meshv1alpha1.BreakGlassActions{}, true, true, true, true},
		{"restored is inactive", meshv1alpha1.BreakGlassRestored, meshv1alpha1.BreakGlassActions{}, false, false, false, false},
		{"actions switched off", meshv1alpha1.BreakGlassEngaged, meshv1alpha1.BreakGlassActions{PinTraffic: &off, RelaxPolicies: &off, DetachInjection: &off}, true, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bg := &meshv1alpha1.BreakGlass{}
			bg.Status.Phase = tc.phase
			bg.Spec.Actions = tc.actions
			if got := Active(bg); got != tc.active {
				t.Errorf("Active = %v, want %v", got, tc.active)
			}
			if got := PinsTraffic(bg); got != tc.pin {
				t.Errorf("PinsTraffic = %v, want %v", got, tc.pin)
			}
			if got := RelaxesPolicies(bg); got != tc.relax {
				t.Errorf("RelaxesPolicies = %v, want %v", got, tc.relax)
			}
			if got := DetachesInjection(bg); got != tc.detach {
				t.Errorf("DetachesInjection = %v, want %v", got, tc.detach)
			}
		})
	}
	if Active(nil) {
		t.Error("Active(nil) = true")
	}
}

func TestTargets(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{}
	mi.Name = "istio"
	mi.Spec.Provider = meshv1alpha1.ProviderIstio
	byRef := &meshv1alpha1.BreakGlass{}
	byRef.Spec.Target.MeshInstallRef = &meshv1alpha1.LocalObjectReference{Name: "istio"}
	otherRef := &meshv1alpha1.BreakGlass{}
	otherRef.Spec.Target.MeshInstallRef = &meshv1alpha1.LocalObjectReference{Name: "linkerd"}
	byProvider := &meshv1alpha1.BreakGlass{}
	byProvider.Spec.Target.Provider = mi.Spec.Provider
	otherProvider := &meshv1alpha1.BreakGlass{}
	otherProvider.Spec.Target.Provider = meshv1alpha1.ProviderLinkerd
	for name, tc := range map[string]struct {
		bg   *meshv1alpha1.BreakGlass
		want bool
	}{"by ref": {byRef, true}, "other ref": {otherRef, false}, "by provider": {byProvider, true}, "other provider": {otherProvider, false}} {
		if got := Targets(tc.bg, mi); got != tc.want {
			t.Errorf("%s: Targets = %v, want %v", name, got, tc.want)
		}
	}
}
