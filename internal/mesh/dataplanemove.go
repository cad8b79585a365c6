package mesh

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// DataPlaneFromAnnotation is the namespace annotation a MeshAdoption
// writes, recorded like every key it changes, in the same patch that moves
// a namespace from one data-plane mode of a mesh to another (Istio sidecar
// → ambient): its value is the mode the namespace leaves. While it is set
// and the namespace's labels select the new mode, a provider whose
// outputs differ between the two modes keeps, where both forms can stand
// side by side without changing what either kind of pod enforces, the
// outputs of the old mode beside the new ones (NamespaceFacts.Previous):
// pods that have not restarted yet still run the old data plane. The
// adoption removes it once the wave passed its gate (the old form is
// pruned) and the record removes it when the wave is moved back (the old
// form, never removed, is all that remains).
const DataPlaneFromAnnotation = "meshplane.io/dataplane-from"

// PreviousDataPlane returns the data-plane mode namespace ns is moving out
// of, from its annotations: ok is false when DataPlaneFromAnnotation is
// absent. Only Sidecar can be left this way; any other value is refused
// (Stalled, reason InvalidSpec) naming the annotation, so no output is
// written for a namespace whose state is unclear.
func PreviousDataPlane(ns string, annotations map[string]string) (DataPlaneMode, bool, error) {
	v, ok := annotations[DataPlaneFromAnnotation]
	if !ok {
		return "", false, nil
	}
	if DataPlaneMode(v) != Sidecar {
		return "", false, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"namespace %s has annotation %s=%q, but the only data-plane mode a namespace moves out of is %q (a MeshAdoption with spec.mode Ambient sets and removes it); "+
				"nothing was applied for the namespace: remove the annotation, or set it to %q while the namespace moves from sidecar to ambient",
			ns, DataPlaneFromAnnotation, v, Sidecar, Sidecar)
	}
	return Sidecar, true, nil
}
