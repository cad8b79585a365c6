package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// HashAnnotation records a hash of the applied configuration, so a field
// dropped from the desired state is noticed without a request.
const HashAnnotation = "meshplane.io/applied-hash"

// Applier applies and prunes the outputs of one owner.
type Applier struct {
	// Client writes (and, through the manager's cache, reads).
	Client client.Client
	// Reader reads current objects; the manager's cache. Client when nil.
	Reader client.Reader
	// Scheme knows every output kind.
	Scheme *runtime.Scheme
	// APIReader reads uncached: the managedFields of an output another
	// writer changed (the cache strips them). Drift is reported without
	// the other field manager's name when nil.
	APIReader client.Reader

	once  sync.Once
	drift *driftLog
}

// Owner is the Meshplane object whose outputs are applied.
type Owner struct {
	// Object is the owner; it must have its UID.
	Object client.Object
	// Kind is its kind, e.g. TrafficSplit.
	Kind string
	// Detached outputs get no owner reference (see Detached).
	Detached bool
	// SharedFields are the owner's records of the fields it set on shared
	// objects, with their previous values (its status): kept while the
	// fields are applied, restored when they are released.
	SharedFields []meshv1alpha1.SharedField
	// SharedKinds are further kinds whose objects are shared for this
	// owner: a ResiliencePolicy's target Service (only the metadata fields
	// given are applied, as for a Namespace), a ProxyPolicy's workloads
	// (their pod-template annotations, shared.go). They are never
	// labelled, owned or deleted, their fields are recorded and restored
	// like a Namespace's, and a field another field manager applies
	// (server-side apply) is a Conflict rather than taken over.
	SharedKinds []schema.GroupKind
}

// shares reports whether objects of gk are shared for the owner: a
// Namespace always, the owner's SharedKinds.
func (o Owner) shares(gk schema.GroupKind) bool {
	return (gk.Group == "" && gk.Kind == "Namespace") || slices.Contains(o.SharedKinds, gk)
}

// isShared reports whether output u is shared for the owner.
func (o Owner) isShared(u *unstructured.Unstructured) bool {
	return o.shares(u.GroupVersionKind().GroupKind())
}

// Result says what an Apply did.
type Result struct {
	// Inventory lists the outputs now in place, sorted.
	Inventory []meshv1alpha1.ObjectReference
	// Changes says, per output, what was done to it: created, configured,
	// unchanged or pruned, in the order of the work.
	Changes ChangeSet
	// SharedFields are the fields set on shared objects, with the values
	// they held before: the owner records them.
	SharedFields []meshv1alpha1.SharedField
	// Drift lists the outputs in a drift fight: another writer keeps
	// rewriting fields Meshplane owns.
	Drift []Drift
}

// Wrote reports whether the Apply sent any write.
func (r Result) Wrote() bool { return r.Changes.Wrote() }

// ConflictError says an object with an output's name exists and is not
// the owner's. It is terminal with reason Conflict.
type ConflictError struct {
	// Kind and Namespace/Name of the clashing object.
	Kind, Namespace, Name string
	// OwnedBy is the other Meshplane owner, empty for a foreign object.
	OwnedBy string
}

// Error names the object and says how to resolve the clash.
func (e *ConflictError) Error() string {
	who := "was not created by Meshplane"
	if e.OwnedBy != "" {
		who = "belongs to Meshplane object " + e.OwnedBy
	}
	return fmt.Sprintf("%s %s/%s already exists and %s; it is never taken over: delete or rename it, or rename this object (nothing was applied)",
		e.Kind, e.Namespace, e.Name, who)
}

// StalledReason makes the error terminal with reason Conflict.
func (e *ConflictError) StalledReason() string { return meshv1alpha1.ConflictReason }

// RetryAfter re-checks the clash on a timer: the foreign object is not
// watched by owner, so its removal is noticed by polling.
func (e *ConflictError) RetryAfter() time.Duration { return outcome.ConflictRetry }

// IsShared reports whether an output is a shared object whose given
// fields only are applied: a Namespace, or a Service given without a spec
// (annotations of a user's Service; a Service Meshplane owns has one).
func IsShared(u *unstructured.Unstructured) bool {
	if u.GroupVersionKind().Group != "" {
		return false
	}
	if u.GetKind() == "Service" {
		_, spec := u.Object["spec"]
		return !spec
	}
	return u.GetKind() == "Namespace"
}

// Desired prepares the outputs for owner: unstructured, with the ownership
// labels, owner reference and hash annotation. It does no I/O.
func (a *Applier) Desired(owner Owner, objs []client.Object) ([]*unstructured.Unstructured, error) {
	ownerGVK, err := apiutil.GVKForObject(owner.Object, a.Scheme)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := ToUnstructured(o, a.Scheme)
		if err != nil {
			return nil, err
		}
		shared := owner.isShared(u)
		if shared && u.GroupVersionKind().Group == "" && u.GetKind() == "Service" {
			// Only the metadata fields given are the owner's.
			delete(u.Object, "spec")
		}
		if !shared {
			labels := u.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			for k, v := range ownership.Labels(owner.Kind, owner.Object.GetNamespace(), owner.Object.GetName()) {
				labels[k] = v
			}
			u.SetLabels(labels)
			if !owner.Detached && (owner.Object.GetNamespace() == "" || owner.Object.GetNamespace() == u.GetNamespace()) {
				// The owner is the controller; references the translation
				// set (a composed route's co-owner) are kept after it.
				u.SetOwnerReferences(append([]metav1.OwnerReference{{
					APIVersion: ownerGVK.GroupVersion().String(), Kind: ownerGVK.Kind,
					Name: owner.Object.GetName(), UID: owner.Object.GetUID(), Controller: ptr.To(true),
				}}, u.GetOwnerReferences()...))
			}
		}
		b, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		if !shared {
			ann[HashAnnotation] = hex.EncodeToString(sum[:8])
		}
		if len(ann) > 0 {
			u.SetAnnotations(ann)
		}
		out = append(out, u)
	}
	return out, nil
}

// Apply makes the owner's outputs equal to objs, all or nothing:
// PrepareToCommit (clash check, then a server-side dry run of every write
// but the first, and of every delete) before Commit (the writes, then the prune of outputs in previous that
// are no longer desired and still carry the owner's label). A refused
// output writes nothing. When every output is in place no request is sent.
func (a *Applier) Apply(ctx context.Context, owner Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference) (Result, error) {
	p, err := a.PrepareToCommit(ctx, owner, objs, previous)
	if err != nil {
		return p.Failed(), err
	}
	return p.Commit(ctx)
}

func (o Owner) value() string {
	return ownership.OwnerValue(o.Kind, o.Object.GetNamespace(), o.Object.GetName())
}

// current reads the live object of u (nil when there is none) and refuses
// one that is not the owner's (*ConflictError) unless adopt is set. A
// shared object must exist: Meshplane never creates it.
func (a *Applier) current(ctx context.Context, u *unstructured.Unstructured, owner Owner, adopt bool) (map[string]any, error) {
	live, err := a.get(ctx, u.GroupVersionKind(), u.GetNamespace(), u.GetName())
	if apierrors.IsNotFound(err) && a.APIReader != nil {
		// The cache may not have seen an object someone created a moment
		// ago: an apply would take it over. Only a create pays this read.
		live, err = a.getFrom(ctx, a.APIReader, u.GroupVersionKind(), u.GetNamespace(), u.GetName())
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	if owner.isShared(u) {
		if live == nil {
			return nil, fmt.Errorf("%s %s does not exist; Meshplane does not create it", u.GetKind(), objName(u.GetNamespace(), u.GetName()))
		}
		return live, nil
	}
	if live != nil && !adopt {
		if err := conflictWith(u, live, owner.value()); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// conflictWith returns a *ConflictError when live is not the owner's.
func conflictWith(u *unstructured.Unstructured, live map[string]any, ownerValue string) error {
	labels := (&unstructured.Unstructured{Object: live}).GetLabels()
	got, managed := labels[ownership.OwnerLabel], labels[ownership.ManagedByLabel] == ownership.ManagedByValue
	if got == ownerValue && managed {
		return nil
	}
	if !managed {
		got = ""
	}
	return &ConflictError{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), OwnedBy: got}
}

// Prune deletes every output in inventory that still carries the owner's
// label (and releases shared objects' fields, restoring the previous
// values owner.SharedFields records); used when the owner goes away or its
// outputs must all be removed. Every delete is dry-run first.
func (a *Applier) Prune(ctx context.Context, owner Owner, inventory []meshv1alpha1.ObjectReference) (ChangeSet, error) {
	p := &Plan{a: a, owner: owner, previous: inventory}
	if err := p.planPrune(ctx); err != nil {
		return nil, err
	}
	if !p.Writes() {
		return nil, nil
	}
	if err := p.dryRun(ctx); err != nil {
		return nil, err
	}
	res, err := p.Commit(ctx)
	return res.Changes, err
}

// get reads an object through the Reader as its typed kind, so the cache
// serves it, and returns its JSON form.
func (a *Applier) get(ctx context.Context, gvk schema.GroupVersionKind, ns, name string) (map[string]any, error) {
	r := a.Reader
	if r == nil {
		r = a.Client
	}
	return a.getFrom(ctx, r, gvk, ns, name)
}

// getFrom is get through reader r.
func (a *Applier) getFrom(ctx context.Context, r client.Reader, gvk schema.GroupVersionKind, ns, name string) (map[string]any, error) {
	var obj client.Object
	if ro, err := a.Scheme.New(gvk); err == nil {
		obj = ro.(client.Object)
	} else {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		obj = u
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return nil, err
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.Object, nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	// An uncached client returns typed objects without apiVersion and kind.
	m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	fillProtoDefaults(obj, m)
	return m, nil
}

func refOf(u *unstructured.Unstructured) meshv1alpha1.ObjectReference {
	return meshv1alpha1.ObjectReference{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

func sortRefs(refs []meshv1alpha1.ObjectReference) {
	slices.SortFunc(refs, func(x, y meshv1alpha1.ObjectReference) int {
		return strings.Compare(x.APIVersion+"/"+x.Kind+"/"+x.Namespace+"/"+x.Name, y.APIVersion+"/"+y.Kind+"/"+y.Namespace+"/"+y.Name)
	})
}

// Contains reports whether every field of want is present in live with the
// same value: maps are compared key by key (extra keys in live are fields
// other managers or defaulting added), lists element by element with the
// same length, numbers by value.
func Contains(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return len(w) == 0 && live == nil
		}
		for k, wv := range w {
			lv, ok := l[k]
			if !ok {
				if isEmpty(wv) {
					continue
				}
				return false
			}
			if !Contains(lv, wv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok {
			return len(w) == 0 && live == nil
		}
		if len(l) != len(w) {
			return false
		}
		for i := range w {
			if !Contains(l[i], w[i]) {
				return false
			}
		}
		return true
	default:
		if wf, ok := number(want); ok {
			lf, ok := number(live)
			return ok && lf == wf
		}
		return live == want
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
