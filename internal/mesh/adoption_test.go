package mesh_test

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// TestHeldProvider: a namespace's policies resolve to the held provider
// only while an adoption holds it in Audit and names the provider.
func TestHeldProvider(t *testing.T) {
	hold, prov := mesh.AuditHoldAnnotation, mesh.AuditHoldProviderAnnotation
	for _, c := range []struct {
		name string
		ann  map[string]string
		want meshv1alpha1.Provider
		ok   bool
	}{
		{"none", nil, "", false},
		{"held with provider", map[string]string{hold: "onboard", prov: "Istio"}, "Istio", true},
		{"provider without hold", map[string]string{prov: "Istio"}, "Istio", false},
		{"hold without provider", map[string]string{hold: "onboard"}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := mesh.HeldProvider(c.ann)
			if ok != c.ok || (ok && got != c.want) {
				t.Fatalf("HeldProvider(%v) = %q, %v; want %q, %v", c.ann, got, ok, c.want, c.ok)
			}
		})
	}
}
