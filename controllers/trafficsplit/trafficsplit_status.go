package trafficsplit

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/status"
)

// setStatus records the outcome of a reconcile on ts and returns the
// summary status.Finish completes.
func setStatus(ts *meshv1alpha1.TrafficSplit, out result, err error) status.Summary {
	st, gen := &ts.Status.CommonStatus, ts.Generation
	if out.provider != "" {
		ts.Status.Provider = out.provider
	}
	setResolvedRefs(ts, out)
	if err != nil {
		// What a failed apply wrote is recorded, so it is pruned later.
		if out.applied.Inventory != nil {
			ts.Status.Inventory = out.applied.Inventory
		}
		return status.Summary{}
	}
	ts.Status.Inventory = out.applied.Inventory
	if bg := out.pinnedBy; bg != nil {
		ts.Status.Weights = Weights(Pin(ts).Spec.Backends)
		incident.MarkHeld(st, gen, bg, "all traffic is pinned to "+StableBackend(&ts.Spec))
		return status.Summary{State: status.Custom}
	}
	incident.ClearHeld(st)
	ts.Status.Weights = Weights(ts.Spec.Backends)
	return status.Summary{Message: fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider)}
}

// setResolvedRefs sets ResolvedRefs: True once every Service was found,
// False with the reference error, unchanged when the phases stopped
// before the references were checked.
func setResolvedRefs(ts *meshv1alpha1.TrafficSplit, out result) {
	status.SetResolvedRefs(&ts.Status.CommonStatus, ts.Generation, out.refsResolved, out.refErr,
		"every referenced Service exists and has the ports used")
}

// Weights renders the effective default weights, e.g. "web-v1=90,web-v2=10".
func Weights(bs []meshv1alpha1.WeightedBackend) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s=%d", b.Name, b.Weight)
	}
	return strings.Join(parts, ",")
}
