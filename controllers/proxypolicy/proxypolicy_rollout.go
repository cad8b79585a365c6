package proxypolicy

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// templateAnnotations is the path of the pod-template annotations a
// SharedField records, e.g. spec.template.metadata.annotations[k].
const templateAnnotations = "spec.template.metadata.annotations["

// workload is one selected workload, as the cache has it.
type workload struct {
	ref meshv1alpha1.ObjectReference
	// annotations are its pod template's.
	annotations map[string]string
	// ready: it has rolled out its current template and is available;
	// why says why not.
	ready bool
	why   string
}

// rolloutPlan is what one reconcile writes to the selected workloads.
type rolloutPlan struct {
	// desired maps the workloads to write, or to hold at their current
	// values, to their pod-template annotations.
	desired map[meshv1alpha1.ObjectReference]map[string]string
	// states are the selected workloads' status entries.
	states []meshv1alpha1.ProxyWorkloadStatus
	// pending counts the workloads still to configure after this
	// reconcile; waitingFor names the workload the health gate waits for.
	pending    int
	waitingFor string
}

// records are a policy's recorded pod-template annotations per workload.
type records map[meshv1alpha1.ObjectReference]map[string]meshv1alpha1.SharedField

// recordsOf indexes fields by workload and annotation key.
func recordsOf(fields []meshv1alpha1.SharedField) records {
	out := records{}
	for _, f := range fields {
		k, ok := strings.CutPrefix(f.Field, templateAnnotations)
		if !ok {
			continue
		}
		if out[f.Object] == nil {
			out[f.Object] = map[string]meshv1alpha1.SharedField{}
		}
		out[f.Object][strings.TrimSuffix(k, "]")] = f
	}
	return out
}

// target is what w's pod template must carry: want, plus the previous
// value of every annotation the policy set before and no longer wants
// (held with that value until the workload is released, so a restore is
// exact); an annotation that was absent before is simply dropped.
func target(want map[string]string, rec map[string]meshv1alpha1.SharedField) map[string]string {
	out := make(map[string]string, len(want))
	for k, v := range want {
		out[k] = v
	}
	for k, f := range rec {
		if _, ok := want[k]; !ok && f.Previous != nil {
			out[k] = *f.Previous
		}
	}
	return out
}

// configured reports whether w carries t and none of the recorded
// annotations t drops.
func configured(w workload, t map[string]string, rec map[string]meshv1alpha1.SharedField) bool {
	for k, v := range t {
		if got, ok := w.annotations[k]; !ok || got != v {
			return false
		}
	}
	for k := range rec {
		if _, keep := t[k]; !keep {
			if _, present := w.annotations[k]; present {
				return false
			}
		}
	}
	return true
}

// planRollout decides which workloads get want now. sel is sorted.
// Configured workloads keep want; pending ones are written — all at once
// without a batch size, else batchSize of them once every configured one
// has rolled out — unless the rollout is paused. A pending workload not
// written keeps the values it has of the annotations the policy recorded
// on it (so nothing is released); one never written is left alone.
func planRollout(want map[string]string, sel []workload, rec records, rollout *meshv1alpha1.ProxyRollout) rolloutPlan {
	plan := rolloutPlan{desired: map[meshv1alpha1.ObjectReference]map[string]string{}}
	if len(want) == 0 {
		return plan
	}
	var pending []workload
	// done: configured before this reconcile; written: now.
	done, written := map[meshv1alpha1.ObjectReference]bool{}, map[meshv1alpha1.ObjectReference]bool{}
	for _, w := range sel {
		if configured(w, target(want, rec[w.ref]), rec[w.ref]) {
			plan.desired[w.ref], done[w.ref] = target(want, rec[w.ref]), true
			continue
		}
		pending = append(pending, w)
	}
	budget := len(pending)
	switch {
	case rollout != nil && rollout.Paused:
		budget = 0
	case rollout != nil && rollout.BatchSize != nil:
		budget = min(budget, int(*rollout.BatchSize))
		for _, w := range sel {
			if done[w.ref] && !w.ready && budget > 0 {
				plan.waitingFor, budget = fmt.Sprintf("%s %s: %s", w.ref.Kind, w.ref.Name, w.why), 0
			}
		}
	}
	for i, w := range pending {
		if i < budget {
			plan.desired[w.ref], written[w.ref] = target(want, rec[w.ref]), true
			continue
		}
		plan.pending++
		if held := hold(w, rec[w.ref]); held != nil {
			plan.desired[w.ref] = held
		}
	}
	for _, w := range sel {
		st := meshv1alpha1.ProxyWorkloadStatus{Kind: w.ref.Kind, Name: w.ref.Name, State: meshv1alpha1.ProxyWorkloadPending}
		if done[w.ref] || written[w.ref] {
			st.State, st.RolledOut = meshv1alpha1.ProxyWorkloadApplied, done[w.ref] && w.ready
		}
		plan.states = append(plan.states, st)
	}
	return plan
}

// hold is what a pending workload that is not written keeps: the live
// values of the annotations recorded on it; nil when none is recorded (it
// was never written and is left alone).
func hold(w workload, rec map[string]meshv1alpha1.SharedField) map[string]string {
	if len(rec) == 0 {
		return nil
	}
	out := map[string]string{}
	for k := range rec {
		if v, ok := w.annotations[k]; ok {
			out[k] = v
		}
	}
	return out
}
