package mesh_test

import (
	"strings"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// TestPreviousDataPlane: only Sidecar is a mode a namespace moves out of;
// any other value is refused, naming the annotation and its value.
func TestPreviousDataPlane(t *testing.T) {
	for _, c := range []struct {
		name   string
		ann    map[string]string
		want   mesh.DataPlaneMode
		refuse string
	}{
		{"absent", nil, "", ""},
		{"sidecar", map[string]string{mesh.DataPlaneFromAnnotation: "Sidecar"}, mesh.Sidecar, ""},
		{"lower case", map[string]string{mesh.DataPlaneFromAnnotation: "sidecar"}, "", `annotation meshplane.io/dataplane-from="sidecar"`},
		{"ambient", map[string]string{mesh.DataPlaneFromAnnotation: "Ambient"}, "", `annotation meshplane.io/dataplane-from="Ambient"`},
		{"empty", map[string]string{mesh.DataPlaneFromAnnotation: ""}, "", `annotation meshplane.io/dataplane-from=""`},
	} {
		got, ok, err := mesh.PreviousDataPlane("shop", c.ann)
		if c.refuse != "" {
			term, isTerm := outcome.AsTerminal(err)
			if !isTerm || term.StalledReason() != meshv1alpha1.InvalidSpecReason || !strings.Contains(err.Error(), "namespace shop has "+c.refuse) || ok {
				t.Errorf("%s: want InvalidSpec naming %s, got %v, %v, %v", c.name, c.refuse, got, ok, err)
			}
			continue
		}
		if err != nil || got != c.want || ok != (c.want != "") {
			t.Errorf("%s: got %q, %v, %v; want %q", c.name, got, ok, err, c.want)
		}
	}
}
