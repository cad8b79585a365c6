package breakglass

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// maxConflicts is the API's limit on status.conflicts.
const maxConflicts = 128

// setStatus records the outcome of a reconcile on bg — phase, record,
// counts, conflicts, times and Engaged — and returns the summary
// status.Finish completes.
func setStatus(bg *meshv1alpha1.BreakGlass, out result, err error) status.Summary {
	st, gen := &bg.Status.CommonStatus, bg.Generation
	setRecord(bg, out)
	if out.phase != "" {
		bg.Status.Phase = out.phase
	}
	if err != nil {
		if outcome.IsTerminal(err) && out.record != nil && !out.restoring {
			bg.Status.Phase = meshv1alpha1.BreakGlassFailed
		}
		if bg.Status.Phase == "" {
			bg.Status.Phase = meshv1alpha1.BreakGlassPending
		}
		status.Set(st, gen, meshv1alpha1.EngagedCondition, metav1.ConditionFalse, outcome.Reason(err, meshv1alpha1.ApplyFailedReason), err.Error())
		return status.Summary{}
	}
	sum := out.summary()
	after := out.requeueAfter
	switch bg.Status.Phase {
	case meshv1alpha1.BreakGlassEngaging, meshv1alpha1.BreakGlassPending:
		status.Set(st, gen, meshv1alpha1.EngagedCondition, metav1.ConditionFalse, meshv1alpha1.ProgressingReason, "engaging: "+sum)
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.ProgressingReason, Message: "engaging: " + sum, RequeueAfter: after}
	case meshv1alpha1.BreakGlassEngaged:
		if bg.Status.EngagedTime == nil {
			bg.Status.EngagedTime = &metav1.Time{Time: out.now}
		}
		msg := fmt.Sprintf("engaged for %s (%s): %s", bg.Status.Provider, bg.Spec.Reason, sum)
		status.Set(st, gen, meshv1alpha1.EngagedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, msg)
		return status.Summary{Message: msg, RequeueAfter: after}
	case meshv1alpha1.BreakGlassRestoring:
		status.Set(st, gen, meshv1alpha1.EngagedCondition, metav1.ConditionFalse, meshv1alpha1.DeletingReason, "restoring: "+sum)
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.DeletingReason, Message: "restoring: " + sum, RequeueAfter: after}
	case meshv1alpha1.BreakGlassRestored:
		msg := "restored the recorded state"
		if n := len(bg.Status.Conflicts); n > 0 {
			msg += fmt.Sprintf("; %d field(s) changed by others during the incident were kept as found (status.conflicts)", n)
		}
		status.Set(st, gen, meshv1alpha1.EngagedCondition, metav1.ConditionFalse, meshv1alpha1.SucceededReason, msg)
		return status.Summary{Message: msg, RequeueAfter: after}
	}
	// No phase yet (nothing was read): the summary conditions stay.
	return status.Summary{State: status.Custom, RequeueAfter: after}
}

// setRecord records the provider, the record Secret, the counts of what
// the record touches, the times and the conflicts of the last pass.
func setRecord(bg *meshv1alpha1.BreakGlass, out result) {
	if out.provider != "" {
		bg.Status.Provider = out.provider
	}
	if rec := out.record; rec != nil {
		if t, perr := time.Parse(time.RFC3339Nano, rec.StartTime); perr == nil && bg.Status.StartTime == nil {
			bg.Status.StartTime = &metav1.Time{Time: t}
		}
		bg.Status.RecordSecretRef = &meshv1alpha1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: out.secretNamespace, Name: out.secret}
		touched := rec.Touched()
		bg.Status.Touched = meshv1alpha1.BreakGlassCounts{
			Namespaces:    int32(rec.NamespacesTouched()),
			Webhooks:      int32(touched[incident.StepWebhooks]),
			Policies:      int32(touched[incident.StepPolicies]),
			TrafficRoutes: int32(len(rec.TrafficRoutes)),
			Workloads:     int32(touched[incident.StepWorkloads]),
		}
	}
	if bg.Spec.ExpiresAfter != nil && bg.Status.StartTime != nil {
		bg.Status.ExpiryTime = &metav1.Time{Time: bg.Status.StartTime.Add(bg.Spec.ExpiresAfter.Duration)}
	} else {
		bg.Status.ExpiryTime = nil
	}
	if out.writes > 0 || len(out.conflicts) > 0 || out.restoring {
		// A pass over the objects ran: its conflicts replace the last.
		bg.Status.Conflicts = conflicts(out.conflicts, out.restoring)
	}
}

func conflicts(cs []incident.Conflict, restoring bool) []meshv1alpha1.FieldConflict {
	if len(cs) == 0 {
		return nil
	}
	out := make([]meshv1alpha1.FieldConflict, 0, min(len(cs), maxConflicts))
	for _, c := range cs {
		if len(out) == maxConflicts {
			break
		}
		field := c.Change.Field()
		if c.Deleted {
			field = "(object)"
		}
		out = append(out, meshv1alpha1.FieldConflict{Object: c.Change.Object.String(), Field: field, Message: trim(c.Message(restoring), 1024)})
	}
	return out
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
