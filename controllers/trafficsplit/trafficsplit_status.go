package trafficsplit

import (
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/breakglass"
	"github.com/meshplane/meshplane/internal/status"
)

// setStatus records the outcome of a reconcile on ts.
func setStatus(ts *meshv1alpha1.TrafficSplit, out result, err error) {
	st, gen := &ts.Status.CommonStatus, ts.Generation
	if out.provider != "" {
		ts.Status.Provider = out.provider
	}
	var re *refError
	switch {
	case out.refsResolved:
		status.Set(st, gen, meshv1alpha1.ResolvedRefsCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "every referenced Service exists and has the ports used")
	case errors.As(err, &re):
		status.Set(st, gen, meshv1alpha1.ResolvedRefsCondition, metav1.ConditionFalse, re.reason, re.msg)
	}
	if err != nil {
		status.MarkError(st, gen, err, meshv1alpha1.ApplyFailedReason)
		return
	}
	ts.Status.Inventory = out.applied.Inventory
	if bg := out.pinnedBy; bg != nil {
		ts.Status.Weights = Weights(Pin(ts).Spec.Backends)
		breakglass.MarkHeld(st, gen, bg, "all traffic is pinned to "+StableBackend(&ts.Spec))
		return
	}
	breakglass.ClearHeld(st)
	ts.Status.Weights = Weights(ts.Spec.Backends)
	status.MarkReady(st, gen, fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider))
}

// Weights renders the effective default weights, e.g. "web-v1=90,web-v2=10".
func Weights(bs []meshv1alpha1.WeightedBackend) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s=%d", b.Name, b.Weight)
	}
	return strings.Join(parts, ",")
}

func isConflict(err error) bool {
	var c *apply.ConflictError
	return errors.As(err, &c)
}
