package mesh_test

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// TestAlongside: the other mesh's outputs are kept only while both
// migration annotations are set, differ, and one of them is the mesh the
// labels resolve to.
func TestAlongside(t *testing.T) {
	from, to := mesh.MigratingFromAnnotation, mesh.MigratingToAnnotation
	for _, c := range []struct {
		name     string
		ann      map[string]string
		resolved meshv1alpha1.Provider
		want     meshv1alpha1.Provider
	}{
		{"no move", nil, meshv1alpha1.ProviderIstio, ""},
		{"before the switch", map[string]string{from: "Linkerd", to: "Istio"}, meshv1alpha1.ProviderLinkerd, meshv1alpha1.ProviderIstio},
		{"after the switch", map[string]string{from: "Linkerd", to: "Istio"}, meshv1alpha1.ProviderIstio, meshv1alpha1.ProviderLinkerd},
		{"only the target", map[string]string{to: "Istio"}, meshv1alpha1.ProviderLinkerd, ""},
		{"only the source", map[string]string{from: "Linkerd"}, meshv1alpha1.ProviderLinkerd, ""},
		{"both the same", map[string]string{from: "Istio", to: "Istio"}, meshv1alpha1.ProviderIstio, ""},
		{"neither side resolved", map[string]string{from: "Linkerd", to: "Cilium"}, meshv1alpha1.ProviderIstio, ""},
	} {
		got, ok := mesh.Alongside(c.ann, c.resolved)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: Alongside = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
}
