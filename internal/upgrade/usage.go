package upgrade

import (
	"slices"

	"github.com/meshplane/meshplane/internal/mesh/istio"
)

// Usage is what still uses one Istio revision.
type Usage struct {
	// Namespaces selecting the revision by label or through a tag.
	Namespaces []string
	// Tags pointing at the revision.
	Tags []string
	// Pods whose proxy was injected by the revision.
	Pods int
}

// InUse reports whether anything uses the revision.
func (u Usage) InUse() bool { return len(u.Namespaces) > 0 || len(u.Tags) > 0 || u.Pods > 0 }

// RevisionUsage computes what uses revision: namespaces labelled
// istio.io/rev with the revision or one of its tags (and
// istio-injection=enabled when the default tag points at it), the tags
// pointing at it, and pods whose istio.io/rev label (set by the injector)
// names it. tags maps tag to revision; nsLabels and podLabels are the
// labels of every namespace and of every pod.
func RevisionUsage(revision string, tags map[string]string, nsLabels map[string]map[string]string, podLabels []map[string]string) Usage {
	var u Usage
	selects := map[string]bool{revision: true}
	for tag, rev := range tags {
		if rev == revision {
			u.Tags = append(u.Tags, tag)
			selects[tag] = true
		}
	}
	slices.Sort(u.Tags)
	defaultHere := tags["default"] == revision
	for name, l := range nsLabels {
		switch {
		case l[istio.InjectionLabel] == "enabled":
			if defaultHere {
				u.Namespaces = append(u.Namespaces, name)
			}
		case l[istio.InjectionLabel] == "disabled":
		case selects[l[istio.RevLabel]]:
			u.Namespaces = append(u.Namespaces, name)
		}
	}
	slices.Sort(u.Namespaces)
	for _, l := range podLabels {
		if l[istio.RevLabel] == revision {
			u.Pods++
		}
	}
	return u
}
