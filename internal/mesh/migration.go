package mesh

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Namespace annotations a MeshAdoption writes while it moves a namespace
// from one mesh to another (Linkerd → Istio, Istio → Linkerd). While both
// are set, to different providers, the controllers of TrafficSplit,
// ZeroTrustPolicy, Canary, ResiliencePolicy and EgressPolicy write the
// outputs of both meshes for the namespace's objects that name no
// provider: the mesh the namespace's labels resolve to, and the other one
// of the pair (TelemetryPolicy switches with the labels). The
// adoption sets them (recorded, like every key it changes) before it
// relabels the namespace, waits until the new mesh's outputs exist, then
// relabels and restarts; it removes them once the wave passed its gate
// (the controllers prune the old mesh's outputs) or restores them with the
// labels when the wave is moved back (the controllers prune the new
// mesh's outputs; the old ones were never removed).
const (
	MigratingFromAnnotation = "meshplane.io/migrating-from"
	MigratingToAnnotation   = "meshplane.io/migrating-to"
)

// Migration returns the providers a namespace is moving between, from its
// annotations; ok is false unless both are set and differ.
func Migration(annotations map[string]string) (from, to meshv1alpha1.Provider, ok bool) {
	from = meshv1alpha1.Provider(annotations[MigratingFromAnnotation])
	to = meshv1alpha1.Provider(annotations[MigratingToAnnotation])
	return from, to, from != "" && to != "" && from != to
}

// Alongside returns the provider whose outputs are kept beside those of
// resolved (the mesh the namespace's labels select) while the namespace
// migrates: the other provider of the pair, when resolved is one of them.
func Alongside(annotations map[string]string, resolved meshv1alpha1.Provider) (meshv1alpha1.Provider, bool) {
	from, to, ok := Migration(annotations)
	switch {
	case !ok:
		return "", false
	case resolved == from:
		return to, true
	case resolved == to:
		return from, true
	}
	return "", false
}

// ExplicitMember returns the registered provider other than except whose
// label or annotation enrols ns explicitly (the mesh a migration moves the
// namespace out of), if any.
func (r *Registry) ExplicitMember(ns *corev1.Namespace, except meshv1alpha1.Provider) (meshv1alpha1.Provider, bool) {
	for _, p := range r.Providers() {
		if p.Name() != except && p.NamespaceMembership(ns).Level == ExplicitMember {
			return p.Name(), true
		}
	}
	return "", false
}

// EnrolmentKeys returns the namespace labels and annotations with which e
// enrols a namespace in its default (sidecar) data plane, set or cleared:
// what a namespace leaving the mesh has removed.
func EnrolmentKeys(e Enroller) (labels, annotations []string, err error) {
	en, err := e.Enrolment(&meshv1alpha1.MeshInstall{}, "")
	if err != nil {
		return nil, nil, err
	}
	labels = append(slices.Sorted(maps.Keys(en.Labels)), en.ClearLabels...)
	annotations = append(slices.Sorted(maps.Keys(en.Annotations)), en.ClearAnnotations...)
	return labels, annotations, nil
}
