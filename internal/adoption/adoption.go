package adoption

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// Namespace annotations a MeshAdoption writes.
const (
	// OwnerAnnotation names the MeshAdoption that enrolled the namespace.
	OwnerAnnotation = "meshplane.io/adoption"
	// PriorAnnotation records, as a JSON Record, the value each label and
	// annotation the MeshAdoption changed had before (null: absent).
	PriorAnnotation = "meshplane.io/adoption-prior"
)

// Record is the prior state of what an enrolment changed on a namespace.
type Record struct {
	// Labels maps each changed label to its prior value (nil: absent).
	Labels map[string]*string `json:"labels,omitempty"`
	// Annotations maps each changed annotation likewise.
	Annotations map[string]*string `json:"annotations,omitempty"`
}

// Namespace is what the engine knows about one namespace.
type Namespace struct {
	// Name of the namespace.
	Name string
	// Labels and Annotations of the namespace.
	Labels, Annotations map[string]string
	// Workloads are its restartable workloads.
	Workloads []upgrade.Workload
}

// ReadRecord reads PriorAnnotation; an absent annotation is an empty
// record.
func ReadRecord(ns Namespace) (Record, error) {
	rec := Record{Labels: map[string]*string{}, Annotations: map[string]*string{}}
	raw, ok := ns.Annotations[PriorAnnotation]
	if !ok {
		return rec, nil
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return rec, fmt.Errorf("namespace %s: annotation %s is not a JSON record of prior labels and annotations (%w); fix or remove it", ns.Name, PriorAnnotation, err)
	}
	if rec.Labels == nil {
		rec.Labels = map[string]*string{}
	}
	if rec.Annotations == nil {
		rec.Annotations = map[string]*string{}
	}
	return rec, nil
}

// Enrolled reports whether ns's labels and annotations put it in the data
// plane e describes.
func Enrolled(e mesh.Enrolment, ns Namespace) bool {
	return matches(ns.Labels, e.Labels, e.ClearLabels) && matches(ns.Annotations, e.Annotations, e.ClearAnnotations)
}

func matches(have, set map[string]string, clear []string) bool {
	for k, v := range set {
		if have[k] != v {
			return false
		}
	}
	for _, k := range clear {
		if _, ok := have[k]; ok {
			return false
		}
	}
	return true
}

// Enrol returns ns's labels and annotations once enrolled by owner: e's
// labels and annotations set, its cleared ones removed, the prior value of
// each one changed recorded in PriorAnnotation (a key already recorded
// keeps its first prior value) and OwnerAnnotation set.
func Enrol(e mesh.Enrolment, ns Namespace, owner string) (labels, annotations map[string]string, err error) {
	rec, err := ReadRecord(ns)
	if err != nil {
		return nil, nil, err
	}
	labels, annotations = clone(ns.Labels), clone(ns.Annotations)
	change(labels, rec.Labels, e.Labels, e.ClearLabels)
	// The record annotations themselves are not user state.
	change(annotations, rec.Annotations, e.Annotations, e.ClearAnnotations)
	raw, _ := json.Marshal(rec)
	annotations[PriorAnnotation] = string(raw)
	annotations[OwnerAnnotation] = owner
	return labels, annotations, nil
}

func change(m map[string]string, prior map[string]*string, set map[string]string, clear []string) {
	note := func(k string) {
		if _, ok := prior[k]; ok {
			return
		}
		if v, ok := m[k]; ok {
			prior[k] = &v
		} else {
			prior[k] = nil
		}
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if m[k] != set[k] {
			note(k)
			m[k] = set[k]
		}
	}
	for _, k := range clear {
		if _, ok := m[k]; ok {
			note(k)
			delete(m, k)
		}
	}
}

// Restore returns ns's labels and annotations moved back: each recorded
// key still at the value enrolment left it at (set, or absent when
// cleared) returns to its prior value; a key someone changed since is left
// alone. PriorAnnotation and OwnerAnnotation are removed.
func Restore(e mesh.Enrolment, ns Namespace) (labels, annotations map[string]string, err error) {
	rec, err := ReadRecord(ns)
	if err != nil {
		return nil, nil, err
	}
	labels, annotations = clone(ns.Labels), clone(ns.Annotations)
	restore(labels, rec.Labels, e.Labels)
	restore(annotations, rec.Annotations, e.Annotations)
	if annotations[mesh.AuditHoldAnnotation] == annotations[OwnerAnnotation] {
		// The policies held in Audit for the wave return to their spec.
		delete(annotations, mesh.AuditHoldAnnotation)
		delete(annotations, mesh.AuditHoldProviderAnnotation)
	}
	delete(annotations, PriorAnnotation)
	delete(annotations, OwnerAnnotation)
	return labels, annotations, nil
}

func restore(m map[string]string, prior map[string]*string, set map[string]string) {
	for k, was := range prior {
		cur, present := m[k]
		want, isSet := set[k]
		untouched := (isSet && present && cur == want) || (!isSet && !present)
		if !untouched {
			continue
		}
		if was == nil {
			delete(m, k)
		} else {
			m[k] = *was
		}
	}
}

// Restarts reports whether enrolling ns restarts its workloads: always when
// e says so, or when a cleared label or annotation was present before
// (recorded), so workloads leave another data plane's sidecar.
func Restarts(e mesh.Enrolment, ns Namespace) bool {
	if e.Restart {
		return true
	}
	if !e.RestartWhenCleared {
		return false
	}
	rec, err := ReadRecord(ns)
	if err != nil {
		return false
	}
	for _, k := range e.ClearLabels {
		if v, ok := rec.Labels[k]; ok && v != nil {
			return true
		}
		if v, ok := ns.Labels[k]; ok && v != "" {
			return true
		}
	}
	for _, k := range e.ClearAnnotations {
		if v, ok := rec.Annotations[k]; ok && v != nil {
			return true
		}
		if _, ok := ns.Annotations[k]; ok {
			return true
		}
	}
	return false
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	maps.Copy(out, m)
	return out
}
