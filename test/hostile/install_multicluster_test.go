package hostile

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// spec.linkerd.multicluster: link names are Kubernetes names (the chart
// makes a Deployment controller-<link> of each), at most 64, no duplicates.
func init() {
	bad := []struct{ name, link, want string }{
		{"a link name with capitals and an underscore", "East_1", `spec.linkerd.multicluster.links[0]: Invalid value: "East_1"`},
		{"an empty link name", "", "spec.linkerd.multicluster.links[0]: Invalid value"},
		{"a link name of 64 characters", strings.Repeat("a", 64), "spec.linkerd.multicluster.links[0]: Too long"},
	}
	for _, b := range bad {
		Register(Case{Category: "schema", Kind: "MeshInstall", Mesh: Linkerd, Name: "multicluster: " + b.name,
			Run: func(h *H) {
				mi := installOf(Linkerd, "mc-bad", "", nil)
				mi.Spec.Linkerd = &meshv1alpha1.LinkerdInstallSpec{Multicluster: &meshv1alpha1.LinkerdMulticluster{Links: []string{b.link}}}
				h.Rejected(h.C.Create(h.Ctx, mi), b.want)
			}})
	}
	Register(Case{Category: "schema", Kind: "MeshInstall", Mesh: Linkerd, Name: "multicluster: the same link twice",
		Run: func(h *H) {
			mi := installOf(Linkerd, "mc-dup", "", nil)
			mi.Spec.Linkerd = &meshv1alpha1.LinkerdInstallSpec{Multicluster: &meshv1alpha1.LinkerdMulticluster{Links: []string{"east", "east"}}}
			h.Rejected(h.C.Create(h.Ctx, mi), `spec.linkerd.multicluster.links[1]: Duplicate value: "east"`)
		}})
	Register(Case{Category: "schema", Kind: "MeshInstall", Mesh: Linkerd, Name: "multicluster: 65 links",
		Run: func(h *H) {
			links := make([]string, 65)
			for i := range links {
				links[i] = fmt.Sprintf("peer-%d", i)
			}
			mi := installOf(Linkerd, "mc-many", "", nil)
			mi.Spec.Linkerd = &meshv1alpha1.LinkerdInstallSpec{Multicluster: &meshv1alpha1.LinkerdMulticluster{Links: links}}
			h.Rejected(h.C.Create(h.Ctx, mi), "spec.linkerd.multicluster.links: Too many: 65: must have at most 64 items")
		}})
}
