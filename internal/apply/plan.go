package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// Plan is a checked change of one owner's outputs that has not been
// written yet: Prepare builds it (clash check, server-side dry run of every
// write and delete), Commit writes it. A caller that must do something
// between the two (record what it is about to set, scale a workload up)
// uses them directly; Apply does both.
type Plan struct {
	a     *Applier
	owner Owner
	// writes are the outputs to apply, in write order, with what the
	// write will be (Created or Configured).
	writes  []*unstructured.Unstructured
	actions []Action
	// unchanged are the outputs already in place.
	unchanged []meshv1alpha1.ObjectReference
	// inventory is the desired outputs, sorted; previous the caller's.
	inventory, previous []meshv1alpha1.ObjectReference
	// prunes are the live outputs no longer desired, to delete; releases
	// the shared objects whose fields are given up.
	prunes   []*unstructured.Unstructured
	releases []meshv1alpha1.ObjectReference
	// shared records the foreign fields the outputs set, with the values
	// they held before.
	shared []meshv1alpha1.SharedField
	// drifted are the outputs another writer changed (their desired state
	// did not change).
	drifted []Drift
	// firstUnchecked says the first write was not dry-run: it is its own
	// check (see PrepareToCommit).
	firstUnchecked bool
}

// Writes reports whether Commit will send any request.
func (p *Plan) Writes() bool { return len(p.writes)+len(p.prunes)+len(p.releases) > 0 }

// SharedFields returns the foreign fields the plan's outputs set (and
// those still held from before), with the values they held before
// Meshplane set them: the record a caller persists before Commit.
func (p *Plan) SharedFields() []meshv1alpha1.SharedField { return p.shared }

// Inventory returns what the caller's inventory must hold while the plan
// is written: the previous outputs and the desired ones.
func (p *Plan) Inventory() []meshv1alpha1.ObjectReference {
	return union(p.previous, p.inventory)
}

// Prepare checks every desired output for a clash with an object the
// owner does not own (*ConflictError), compares each with the cached
// object, and server-side dry-runs (dryRun=All, field manager meshplane,
// forced, as the real write) every output that differs and every delete a
// prune needs. Nothing is written. A refusal is terminal
// (outcome.Stalled, reason OutputRejected) naming the output, the field
// and the API server's message; a transient failure stays transient. When
// nothing differs no request is sent at all.
func (a *Applier) Prepare(ctx context.Context, owner Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference) (*Plan, error) {
	return a.prepare(ctx, owner, objs, previous, prepareOptions{prune: true})
}

// PrepareToCommit is Prepare for a caller that does nothing between it and
// Commit but bookkeeping on its own object (a status record): the first
// write, an owned output, is not dry-run, because Commit sends it before
// anything else and a refusal of it leaves nothing written — Commit then
// returns the refusal as Prepare would have. One request fewer per change;
// a change of one output sends no dry run at all.
func (a *Applier) PrepareToCommit(ctx context.Context, owner Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference) (*Plan, error) {
	return a.prepare(ctx, owner, objs, previous, prepareOptions{prune: true, firstUnchecked: true})
}

// prepareOptions: adopt takes over foreign objects of an output's name
// (ApplyDetached), prune plans the delete of previous outputs no longer
// desired, firstUnchecked leaves the first write to Commit (PrepareToCommit).
type prepareOptions struct{ adopt, prune, firstUnchecked bool }

func (a *Applier) prepare(ctx context.Context, owner Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference, opts prepareOptions) (*Plan, error) {
	adopt, prune := opts.adopt, opts.prune
	p := &Plan{a: a, owner: owner, previous: previous}
	desired, err := a.Desired(owner, objs)
	if err != nil {
		return p, err
	}
	lives := make([]map[string]any, len(desired))
	for i, u := range desired {
		if lives[i], err = a.current(ctx, u, owner, adopt); err != nil {
			return p, err
		}
	}
	var sharedWrites []*unstructured.Unstructured
	var sharedActions []Action
	for i, u := range desired {
		ref := refOf(u)
		shared := owner.isShared(u)
		p.inventory = append(p.inventory, ref)
		if shared {
			keepPrevious(u, recordsOf(owner.SharedFields, ref))
			p.shared = append(p.shared, sharedFields(u, lives[i], owner.SharedFields, slices.Contains(previous, ref))...)
		}
		if lives[i] != nil && Contains(lives[i], u.Object) {
			p.unchanged = append(p.unchanged, ref)
			continue
		}
		action := Created
		if lives[i] != nil {
			action = Configured
			if !shared && isDrift(u, lives[i]) {
				p.drifted = append(p.drifted, Drift{Object: ref})
			}
		}
		if shared {
			if err := a.foreignApplied(ctx, owner, u, lives[i]); err != nil {
				return p, err
			}
			// Fields of objects Meshplane did not create (a namespace-wide
			// default) are written last: they widen a change to the whole
			// namespace.
			sharedWrites, sharedActions = append(sharedWrites, u), append(sharedActions, action)
			continue
		}
		p.writes, p.actions = append(p.writes, u), append(p.actions, action)
	}
	p.writes, p.actions = append(p.writes, sharedWrites...), append(p.actions, sharedActions...)
	sortRefs(p.inventory)
	if prune {
		if err := p.planPrune(ctx); err != nil {
			return p, err
		}
	}
	if !p.Writes() {
		return p, nil
	}
	if err := p.checkDrift(ctx); err != nil {
		return p, err
	}
	// Only an owned output may go unchecked: fields of a shared object are
	// written last, after a record the caller persists.
	p.firstUnchecked = opts.firstUnchecked && len(p.writes) > 0 && !owner.isShared(p.writes[0])
	return p, p.dryRun(ctx)
}

// planPrune finds the previous outputs no longer desired: owned ones that
// still carry the owner's label are deleted, shared ones released.
func (p *Plan) planPrune(ctx context.Context) error {
	ownerValue := p.owner.value()
	for _, ref := range p.previous {
		if slices.Contains(p.inventory, ref) {
			continue
		}
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			continue
		}
		gvk := gv.WithKind(ref.Kind)
		live, err := p.a.get(ctx, gvk, ref.Namespace, ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && live == nil) {
			continue
		}
		if err != nil {
			return err
		}
		if p.owner.shares(gvk.GroupKind()) {
			p.releases = append(p.releases, ref)
			continue
		}
		lu := &unstructured.Unstructured{Object: live}
		if lu.GetLabels()[ownership.OwnerLabel] != ownerValue || lu.GetLabels()[ownership.ManagedByLabel] != ownership.ManagedByValue {
			continue // not ours (any more): never deleted
		}
		p.prunes = append(p.prunes, lu)
	}
	return nil
}

// dryRun sends every write and delete of the plan with dryRun=All.
func (p *Plan) dryRun(ctx context.Context) error {
	writes := p.writes
	if p.firstUnchecked {
		writes = writes[1:]
	}
	for _, u := range writes {
		if err := p.a.applyOne(ctx, u, true); err != nil {
			return Refusal(u.GetKind(), u.GetNamespace(), u.GetName(), "applying", err)
		}
	}
	for _, lu := range p.prunes {
		if err := p.a.deleteOne(ctx, lu, true); client.IgnoreNotFound(err) != nil {
			return Refusal(lu.GetKind(), lu.GetNamespace(), lu.GetName(), "deleting", err)
		}
	}
	for _, ref := range p.releases {
		if err := p.a.release(ctx, ref, p.owner.SharedFields, true); err != nil {
			return Refusal(ref.Kind, ref.Namespace, ref.Name, "releasing fields of", err)
		}
	}
	return nil
}

// Commit writes the plan: the outputs in order (owned ones in the order
// the translator listed them, then fields of shared objects), then the
// deletes of outputs no longer desired and the release of shared fields
// (the old outputs stay until the new ones are in place). A failure
// returns a Result whose Inventory holds the previous outputs and every
// one a write was sent for, so the caller records them and a later
// deletion releases them.
func (p *Plan) Commit(ctx context.Context) (Result, error) {
	var res Result
	for _, ref := range p.unchanged {
		res.Changes.add(ref, Unchanged)
	}
	attempted := slices.Clone(p.previous)
	for i, u := range p.writes {
		ref := refOf(u)
		attempted = append(attempted, ref)
		if err := p.a.applyOne(ctx, u, false); err != nil {
			if i == 0 && p.firstUnchecked {
				// Nothing was written: a refusal, exactly as a dry run's.
				return p.Failed(), Refusal(u.GetKind(), u.GetNamespace(), u.GetName(), "applying", err)
			}
			res.Inventory, res.SharedFields = union(attempted, nil), p.shared
			return res, refusal(u.GetKind(), u.GetNamespace(), u.GetName(), "applying", err,
				"it passed the dry run, so the API server changed its mind in between; the outputs written before it stay, recorded for the next attempt")
		}
		res.Changes.add(ref, p.actions[i])
	}
	p.a.repaired(p.owner, p.drifted)
	res.Drift = p.a.fights(p.owner, p.inventory)
	res.Inventory = slices.Clone(p.inventory)
	keepShared := p.shared
	var errs []error
	for _, lu := range p.prunes {
		ref := refOf(lu)
		if err := p.a.deleteOne(ctx, lu, false); client.IgnoreNotFound(err) != nil {
			errs = append(errs, Refusal(ref.Kind, ref.Namespace, ref.Name, "pruning", err))
			res.Inventory = append(res.Inventory, ref)
			continue
		}
		res.Changes.add(ref, Pruned)
	}
	for _, ref := range p.releases {
		if err := p.a.release(ctx, ref, p.owner.SharedFields, false); err != nil {
			errs = append(errs, fmt.Errorf("releasing fields of %s %s: %w", ref.Kind, ref.Name, err))
			res.Inventory = append(res.Inventory, ref)
			keepShared = append(keepShared, recordsOf(p.owner.SharedFields, ref)...)
			continue
		}
		res.Changes.add(ref, Released)
	}
	sortRefs(res.Inventory)
	res.SharedFields = keepShared
	return res, errors.Join(errs...)
}

// Failed is the Result of a plan that was not committed: the previous
// inventory and shared fields stay as they were.
func (p *Plan) Failed() Result {
	var res Result
	if p == nil {
		return res
	}
	res.Inventory = slices.Clone(p.previous)
	res.SharedFields = p.owner.SharedFields
	res.Drift = p.a.fights(p.owner, union(p.previous, p.inventory))
	return res
}

// applyOne server-side applies u with field manager meshplane, forced;
// dry only validates it (dryRun=All).
func (a *Applier) applyOne(ctx context.Context, u *unstructured.Unstructured, dry bool) error {
	opts := []client.ApplyOption{client.FieldOwner(ownership.FieldManager), client.ForceOwnership}
	if dry {
		opts = append(opts, client.DryRunAll)
	}
	return a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), opts...)
}

// deleteOne deletes lu on the preconditions that it is still the object
// read (UID and resourceVersion): an object relabelled for another owner
// since is not deleted (Conflict; the next reconcile re-reads it).
func (a *Applier) deleteOne(ctx context.Context, lu *unstructured.Unstructured, dry bool) error {
	pre := client.Preconditions{UID: ptr.To(lu.GetUID())}
	if rv := lu.GetResourceVersion(); rv != "" {
		pre.ResourceVersion = ptr.To(rv)
	}
	opts := []client.DeleteOption{pre}
	if dry {
		opts = append(opts, client.DryRunAll)
	}
	return a.Client.Delete(ctx, lu, opts...)
}

// Refusal classifies the error of a write or delete of one output. A
// refusal by the API server — its validation (Invalid, BadRequest), an
// admission webhook or authorization (Forbidden), a request too large —
// is terminal: outcome.Stalled with reason OutputRejected naming the
// output, the fields and the message. Anything else (timeouts, 5xx such
// as an unreachable webhook, conflicts) is transient with reason
// ApplyFailed.
func Refusal(kind, namespace, name, verb string, err error) error {
	return refusal(kind, namespace, name, verb, err, "nothing of this generation was applied and the previous outputs stay in force")
}

// refusal is Refusal with what became of the generation.
func refusal(kind, namespace, name, verb string, err error, state string) error {
	obj := kind + " " + name
	if namespace != "" {
		obj = kind + " " + namespace + "/" + name
	}
	if !refused(err) {
		return outcome.Transient(meshv1alpha1.ApplyFailedReason, fmt.Errorf("%s %s: %w", verb, obj, err))
	}
	fields := ""
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Details != nil {
		var names []string
		for _, c := range st.Status().Details.Causes {
			if c.Field != "" && !slices.Contains(names, c.Field) {
				names = append(names, c.Field)
			}
		}
		if len(names) > 0 {
			fields = " (field " + strings.Join(names, ", ") + ")"
		}
	}
	return outcome.Stalled(meshv1alpha1.OutputRejectedReason,
		"%s was refused by the API server%s: %v; %s: change the spec so the output is accepted",
		obj, fields, err, state)
}

func refused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsMethodNotSupported(err)
}

// union returns the refs of both lists, once each, sorted.
func union(a, b []meshv1alpha1.ObjectReference) []meshv1alpha1.ObjectReference {
	out := make([]meshv1alpha1.ObjectReference, 0, len(a)+len(b))
	for _, r := range append(slices.Clone(a), b...) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	sortRefs(out)
	return out
}
