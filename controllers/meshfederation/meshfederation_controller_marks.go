package meshfederation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
)

// Service marks (mesh.ServiceMarker) are labels and annotations an export
// sets on the user's own Service in a member. They are applied as shared
// fields (apply.Owner.SharedKinds) in an apply of their own, beside the
// member's other service-federation objects, which may hold a Service the
// federation owns (Istio's east-west gateway): one record in status holds
// both, a marked Service told apart by its shared-field records.

// markKinds makes a Service shared for the marks' apply.
var markKinds = []schema.GroupKind{{Kind: "Service"}}

// isServiceRef reports whether ref is a core Service.
func isServiceRef(ref meshv1alpha1.ObjectReference) bool {
	return ref.APIVersion == "v1" && ref.Kind == "Service"
}

// splitRecord splits a member's record into the objects of the main apply
// and the Services the marks' apply set fields on (those with a shared
// field record).
func splitRecord(rec meshv1alpha1.MemberServicesStatus) (main, marks meshv1alpha1.MemberServicesStatus) {
	marked := map[meshv1alpha1.ObjectReference]bool{}
	for _, f := range rec.SharedFields {
		if isServiceRef(f.Object) {
			marked[f.Object] = true
			marks.SharedFields = append(marks.SharedFields, f)
		} else {
			main.SharedFields = append(main.SharedFields, f)
		}
	}
	for _, ref := range rec.Inventory {
		if marked[ref] {
			marks.Inventory = append(marks.Inventory, ref)
		} else {
			main.Inventory = append(main.Inventory, ref)
		}
	}
	return main, marks
}

// joinRecord is the one record of both applies.
func joinRecord(rec *meshv1alpha1.MemberServicesStatus, main, marks []meshv1alpha1.ObjectReference, mainShared, marksShared []meshv1alpha1.SharedField) {
	rec.Inventory = append(append([]meshv1alpha1.ObjectReference{}, main...), marks...)
	rec.SharedFields = append(append([]meshv1alpha1.SharedField{}, mainShared...), marksShared...)
	if len(rec.Inventory) == 0 {
		rec.Inventory = nil
	}
	if len(rec.SharedFields) == 0 {
		rec.SharedFields = nil
	}
}

// owners are the apply owners of a member's record: the main one and the
// marks' one.
func owners(fed *meshv1alpha1.MeshFederation, main, marks meshv1alpha1.MemberServicesStatus) (apply.Owner, apply.Owner) {
	return apply.Owner{Object: fed, Kind: kind, Detached: true, SharedFields: main.SharedFields},
		apply.Owner{Object: fed, Kind: kind, Detached: true, SharedFields: marks.SharedFields, SharedKinds: markKinds}
}

// markObject is the user's Service ns/name with only the marks.
func markObject(ns, name string, mk mesh.ServiceMarks) client.Object {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	u.SetNamespace(ns)
	u.SetName(name)
	if len(mk.Labels) > 0 {
		u.SetLabels(mk.Labels)
	}
	if len(mk.Annotations) > 0 {
		u.SetAnnotations(mk.Annotations)
	}
	return u
}

// serviceMarks returns the marks member s sets on its Service svc (nil
// when none, or when s does not have the Service: a mark is never a
// Service created), why the mesh cannot carry the export there
// (unsupported), and why the marks cannot be set (conflict: another field
// manager applies one of them with another value).
func serviceMarks(ctx context.Context, s *svcMember, svc mesh.ExportedService) (mark client.Object, unsupported, conflict string) {
	mk, ok := s.export.se.(mesh.ServiceMarker)
	if !ok {
		return nil, "", ""
	}
	exporter := contains(svc.Exporters, s.m.spec.Name)
	marks, refusal := mk.ServiceMarks(s.export.mi, s.fm, svc, exporter)
	if refusal != "" || marks.Empty() {
		return nil, refusal, ""
	}
	live := exportedSvc(s, svc)
	if live == nil {
		live = &corev1.Service{}
		if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: svc.Namespace, Name: svc.Name}, live); err != nil {
			return nil, "", ""
		}
	}
	if why := foreignMark(live, marks); why != "" {
		return nil, "", s.m.spec.Name + ": " + why
	}
	return markObject(svc.Namespace, svc.Name, marks), "", ""
}

// exportedSvc is the Service of svc member s exports, as read this
// reconcile.
func exportedSvc(s *svcMember, svc mesh.ExportedService) *corev1.Service {
	for _, e := range s.export.exports {
		if e.Namespace == svc.Namespace && e.Name == svc.Name {
			return e
		}
	}
	return nil
}

// foreignMark says which mark another field manager applies (server-side
// apply) with another value on the live Service: a declarative owner (a
// GitOps tool) would apply it back, so it is never taken over. A value
// set by an imperative edit (kubectl label) is taken over, recorded and
// restored when the export goes.
func foreignMark(live *corev1.Service, marks mesh.ServiceMarks) string {
	type entry struct{ path, key, have, want string }
	var differing []entry
	for _, m := range []struct {
		path       string
		want, have map[string]string
	}{{"labels", marks.Labels, live.Labels}, {"annotations", marks.Annotations, live.Annotations}} {
		for _, k := range sortedKeys(m.want) {
			if v, ok := m.have[k]; ok && v != m.want[k] {
				differing = append(differing, entry{m.path, k, v, m.want[k]})
			}
		}
	}
	for _, e := range live.ManagedFields {
		if e.Operation != metav1.ManagedFieldsOperationApply || e.Manager == ownership.FieldManager || e.Manager == apply.RestoreFieldManager || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if json.Unmarshal(e.FieldsV1.GetRawBytes(), &set) != nil {
			continue
		}
		md, _ := set["f:metadata"].(map[string]any)
		for _, d := range differing {
			keys, _ := md["f:"+d.path].(map[string]any)
			if _, owns := keys["f:"+d.key]; owns {
				return fmt.Sprintf("Service %s/%s: metadata.%s[%s] is %q, applied by field manager %s, and the export sets %q; "+
					"Meshplane never takes over a field another owner applies (it would apply it back): remove it from %s's configuration or set it to %q there, "+
					"or delete the ServiceExport (nothing was set on the Service)",
					live.Namespace, live.Name, d.path, d.key, d.have, e.Manager, d.want, e.Manager, d.want)
			}
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// applyMember writes objs and the marks into member s as two plans under
// one record, recorded before anything is written.
func (r *Reconciler) applyMember(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, objs []client.Object, patcher *status.Patcher) error {
	prevMain, prevMarks := splitRecord(memberServices(fed, s.m.spec.Name))
	ownMain, ownMarks := owners(fed, prevMain, prevMarks)
	a := &apply.Applier{Client: s.m.client, Scheme: r.Local.Scheme()}
	plan, err := a.Prepare(ctx, ownMain, objs, prevMain.Inventory)
	if err != nil {
		return r.servicesErr(s, err)
	}
	// The marks' applier reads managedFields uncached: a mark another
	// field manager applies is a Conflict (the member clients are
	// uncached).
	ma := &apply.Applier{Client: s.m.client, Scheme: r.Local.Scheme(), APIReader: s.m.client}
	mplan, err := ma.Prepare(ctx, ownMarks, s.export.marks, prevMarks.Inventory)
	if err != nil {
		return r.servicesErr(s, err)
	}
	if plan.Writes() || mplan.Writes() {
		// Record first: what is about to exist and the previous values of
		// the fields set on shared objects, so a crash or a deletion in
		// between still removes and restores exactly.
		joinRecord(setMemberServices(fed, s.m.spec.Name), plan.Inventory(), mplan.Inventory(), plan.SharedFields(), mplan.SharedFields())
		// Under the lock even when the record did not change: a stale read
		// must not write what a newer status no longer records.
		if err := patcher.Commit(ctx, fed); err != nil {
			return err
		}
	}
	res, err := plan.Commit(ctx)
	mres, merr := mplan.Commit(ctx)
	s.applied = res
	s.applied.Changes = append(s.applied.Changes, mres.Changes...)
	if s.applied.Wrote() {
		r.event(fed, corev1.EventTypeNormal, "ServicesLinked", "Apply", "cluster %s: %s", s.m.spec.Name, s.applied.Note())
	}
	joinRecord(setMemberServices(fed, s.m.spec.Name), res.Inventory, mres.Inventory, plan.SharedFields(), markShared(mplan, mres, merr))
	if err = errors.Join(err, merr); err != nil {
		return r.servicesErr(s, err)
	}
	return nil
}

// markShared is the marks' record after a commit: a failed release keeps
// its records (the Result says which).
func markShared(p *apply.Plan, res apply.Result, err error) []meshv1alpha1.SharedField {
	if err != nil && res.SharedFields != nil {
		return res.SharedFields
	}
	return p.SharedFields()
}

// releaseRecord prunes both parts of a member's record.
func (r *Reconciler) releaseRecord(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member, prev meshv1alpha1.MemberServicesStatus) error {
	prevMain, prevMarks := splitRecord(prev)
	ownMain, ownMarks := owners(fed, prevMain, prevMarks)
	ma := &apply.Applier{Client: m.client, Scheme: r.Local.Scheme(), APIReader: m.client}
	pruned, err := ma.Prune(ctx, ownMarks, prevMarks.Inventory)
	if err == nil {
		a := &apply.Applier{Client: m.client, Scheme: r.Local.Scheme()}
		var more apply.ChangeSet
		more, err = a.Prune(ctx, ownMain, prevMain.Inventory)
		pruned = append(pruned, more...)
	}
	if pruned.Wrote() {
		r.event(fed, corev1.EventTypeNormal, "ServicesUnlinked", "Delete", "cluster %s: %s", m.spec.Name, pruned)
	}
	return err
}
