package overlap

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TestContenders checks that a policy's contest is decided among the
// policies connected to it by conflicts, through others too, and that
// unrelated policies are left out.
func TestContenders(t *testing.T) {
	pol := func(name string, mtls meshv1alpha1.MTLSMode, app string) *meshv1alpha1.ZeroTrustPolicy {
		p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{MTLS: &meshv1alpha1.MTLSSettings{Mode: mtls}}}
		if app != "" {
			p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		}
		return p
	}
	a := pol("a", meshv1alpha1.MTLSStrict, "")      // the whole namespace
	b := pol("b", meshv1alpha1.MTLSPermissive, "x") // conflicts with a and c
	c := pol("c", meshv1alpha1.MTLSStrict, "x")     // conflicts with b only
	d := pol("d", meshv1alpha1.MTLSStrict, "y")     // conflicts with nothing
	e := pol("e", meshv1alpha1.MTLSPermissive, "z") // conflicts with a (and so joins c's set through b and a)
	got := contenders(c, []*meshv1alpha1.ZeroTrustPolicy{a, b, d, e})
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if want := []string{"a", "b", "c", "e"}; !slices.Equal(names, want) {
		t.Errorf("contenders of c = %v, want %v", names, want)
	}
	if got := contenders(d, []*meshv1alpha1.ZeroTrustPolicy{pol("f", meshv1alpha1.MTLSStrict, "y")}); len(got) != 1 {
		t.Errorf("contenders of d = %d policies, want d alone", len(got))
	}
}
