package incident

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// RecordKey is the Secret key holding the gzip-compressed JSON record.
const RecordKey = "record.json.gz"

// RecordVersion is the version of the record's format. Version 2 adds
// element changes (Change.Element); version 1 records are still read.
const RecordVersion = 2

// MaxRecordBytes is the largest compressed record a Secret may hold (the
// API server refuses objects over 1 MiB; some room is left for metadata).
const MaxRecordBytes = 900 * 1024

// Step orders the changes: engaging applies the steps in increasing order,
// restoring in RestoreOrder.
type Step int

const (
	// StepCoverage sets NamespaceAnnotation on every namespace in scope,
	// before anything else is changed there.
	StepCoverage Step = iota
	// StepWebhooks neutralises the mesh's webhooks: once done, new pods in
	// scope start without sidecars even with the control plane down.
	StepWebhooks
	// StepNamespaces removes injection markers and relaxes namespace
	// policy annotations.
	StepNamespaces
	// StepPolicies relaxes mesh policy objects.
	StepPolicies
	// StepWorkloads rollout-restarts workloads, in batches.
	StepWorkloads
)

// EngageOrder is the order steps are applied in: webhooks first (one
// patch and new pods start everywhere in scope). StepNamespaces is applied
// together with StepCoverage, in one patch per namespace (see
// StepObjects): the coverage annotation lands with, never after, the
// removal of the namespace's markers, and 500 namespaces cost 500 patches,
// not 1,000.
var EngageOrder = []Step{StepWebhooks, StepCoverage, StepPolicies, StepWorkloads}

// RestoreOrder is the order steps are restored in: the reverse, except
// that namespaces get their labels back before the webhooks select them
// again. A namespace's markers and its coverage annotation are restored in
// one patch, as they were engaged (2,000 namespaces cost 2,000 patches,
// not 4,000): the coverage annotation then goes before the webhooks'
// NotIn requirement, which is safe because the record (Secret and
// status.record) outlives both until the restore ends, and a BreakGlass
// engaging a released namespace meanwhile adds a NotIn requirement of its
// own, never this one's.
var RestoreOrder = []Step{StepWorkloads, StepPolicies, StepCoverage, StepWebhooks}

func (s Step) String() string {
	switch s {
	case StepCoverage:
		return "coverage"
	case StepWebhooks:
		return "webhooks"
	case StepNamespaces:
		return "namespaces"
	case StepPolicies:
		return "policies"
	case StepWorkloads:
		return "workloads"
	}
	return fmt.Sprintf("step%d", int(s))
}

// ObjectRef names an object the record changes.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// GVK returns the reference's group, version and kind.
func (r ObjectRef) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// String renders kind/namespace/name (kind/name when cluster-scoped).
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Value is a field's value: absent, or present with its JSON.
type Value struct {
	Present bool            `json:"present"`
	JSON    json.RawMessage `json:"json,omitempty"`
}

// Absent is the value of a missing field.
var Absent = Value{}

// ValueOf returns the value of a present field.
func ValueOf(v any) Value {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("breakglass: value not representable as JSON: %v", err))
	}
	return Value{Present: true, JSON: canonical(b)}
}

// Equal reports whether two values are the same field state.
func (v Value) Equal(o Value) bool {
	if v.Present != o.Present {
		return false
	}
	return !v.Present || bytes.Equal(canonical(v.JSON), canonical(o.JSON))
}

// Decode returns the value as unstructured JSON (nil when absent).
func (v Value) Decode() any {
	if !v.Present {
		return nil
	}
	var out any
	if err := json.Unmarshal(v.JSON, &out); err != nil {
		panic(fmt.Sprintf("breakglass: recorded value is not JSON: %v", err))
	}
	return out
}

func (v Value) String() string {
	if !v.Present {
		return "<absent>"
	}
	return string(v.JSON)
}

// canonical re-encodes JSON with sorted keys and normalised numbers.
func canonical(b []byte) []byte {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return b
	}
	out, _ := json.Marshal(x)
	return out
}

// Change is one field of one object: its value before the BreakGlass
// (Prior) and the value the BreakGlass sets (Set).
type Change struct {
	Step   Step      `json:"step"`
	Object ObjectRef `json:"object"`
	// Path addresses the field: map keys, and "[name=x]" for the element
	// of a list of objects whose name is x (admission webhooks).
	Path  []string `json:"path"`
	Prior Value    `json:"prior"`
	Set   Value    `json:"set"`
	// Element: Path addresses a list and Set is one element the
	// BreakGlass adds to it (its own NotIn requirement of a webhook's
	// namespaceSelector); Prior is absent. Engaging appends the element,
	// restoring removes exactly that element and nothing else, so
	// BreakGlasses narrowing the same webhook restore in any order.
	Element bool `json:"element,omitempty"`
}

// Field renders the path, e.g. metadata.labels[istio.io/rev].
func (c Change) Field() string {
	var b strings.Builder
	for i, p := range c.Path {
		switch {
		case strings.HasPrefix(p, "["):
			b.WriteString(p)
		case strings.ContainsAny(p, "./") || (i > 0 && (c.Path[i-1] == "labels" || c.Path[i-1] == "annotations")):
			b.WriteString("[" + p + "]")
		default:
			if i > 0 {
				b.WriteString(".")
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// Record is the prior state of everything a BreakGlass changes, written
// before any change and read back to restore.
type Record struct {
	Version    int    `json:"version"`
	BreakGlass string `json:"breakGlass"`
	UID        string `json:"uid"`
	Provider   string `json:"provider"`
	// Namespaces is the scope, computed once when engaging.
	Namespaces []string `json:"namespaces"`
	// WholeMesh is true when the scope is every namespace the mesh serves.
	WholeMesh bool `json:"wholeMesh,omitempty"`
	// StartTime is when engaging began (RFC 3339).
	StartTime string   `json:"startTime"`
	Changes   []Change `json:"changes"`
	// TrafficRoutes are the TrafficSplits and Canaries in scope (kind/ns/name).
	TrafficRoutes []string `json:"trafficRoutes,omitempty"`
}

// Encode returns the gzip-compressed JSON of r, or an error when it would
// not fit in a Secret.
func (r *Record) Encode() ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > MaxRecordBytes {
		return nil, fmt.Errorf("the record of %d changes is %d bytes compressed, over the %d a Secret can hold; narrow spec.scope", len(r.Changes), buf.Len(), MaxRecordBytes)
	}
	return buf.Bytes(), nil
}

// DecodeRecord reads a record written by Encode.
func DecodeRecord(b []byte) (*Record, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("reading the break-glass record: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the break-glass record: %w", err)
	}
	r := &Record{}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("decoding the break-glass record: %w", err)
	}
	if r.Version < 1 || r.Version > RecordVersion {
		return nil, fmt.Errorf("break-glass record version %d is not supported (want %d)", r.Version, RecordVersion)
	}
	return r, nil
}

// Objects groups the changes of one step by object, in a stable order.
func (r *Record) Objects(step Step) []ObjectChanges {
	idx := map[ObjectRef]int{}
	var out []ObjectChanges
	for _, c := range r.Changes {
		if c.Step != step {
			continue
		}
		i, ok := idx[c.Object]
		if !ok {
			i = len(out)
			idx[c.Object] = i
			out = append(out, ObjectChanges{Object: c.Object})
		}
		out[i].Changes = append(out[i].Changes, c)
	}
	return out
}

// StepObjects returns the objects to patch for one step of EngageOrder or
// RestoreOrder: for StepCoverage, the coverage and namespace changes of
// each namespace together.
func (r *Record) StepObjects(step Step) []ObjectChanges {
	if step != StepCoverage {
		return r.Objects(step)
	}
	out := r.Objects(StepCoverage)
	idx := map[ObjectRef]int{}
	for i, oc := range out {
		idx[oc.Object] = i
	}
	for _, oc := range r.Objects(StepNamespaces) {
		if i, ok := idx[oc.Object]; ok {
			out[i].Changes = append(out[i].Changes, oc.Changes...)
			continue
		}
		out = append(out, oc)
	}
	return out
}

// Touched counts the distinct objects changed in each step.
func (r *Record) Touched() map[Step]int {
	seen := map[Step]map[ObjectRef]bool{}
	for _, c := range r.Changes {
		if seen[c.Step] == nil {
			seen[c.Step] = map[ObjectRef]bool{}
		}
		seen[c.Step][c.Object] = true
	}
	out := map[Step]int{}
	for s, m := range seen {
		out[s] = len(m)
	}
	return out
}

// NamespacesTouched counts the namespaces whose labels or annotations
// change (coverage, markers or policy annotations).
func (r *Record) NamespacesTouched() int {
	seen := map[string]bool{}
	for _, c := range r.Changes {
		if c.Object.Kind == "Namespace" && c.Object.Group == "" {
			seen[c.Object.Name] = true
		}
	}
	return len(seen)
}

// ObjectChanges are the changes of one object in one step.
type ObjectChanges struct {
	Object  ObjectRef
	Changes []Change
}

// sortChanges orders changes by step, object and path, so a plan is
// deterministic.
func sortChanges(cs []Change) {
	slices.SortStableFunc(cs, func(a, b Change) int {
		if a.Step != b.Step {
			return int(a.Step) - int(b.Step)
		}
		if c := strings.Compare(a.Object.String(), b.Object.String()); c != 0 {
			return c
		}
		return strings.Compare(strings.Join(a.Path, "\x00"), strings.Join(b.Path, "\x00"))
	})
}
