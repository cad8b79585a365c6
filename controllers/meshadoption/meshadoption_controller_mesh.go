package meshadoption

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// A namespace in another mesh's data plane (its label or annotation enrols
// it explicitly) is moved between meshes in its wave, in three steps:
//
//  1. Dual outputs. The namespace is annotated (recorded)
//     mesh.MigratingFromAnnotation=<old> and mesh.MigratingToAnnotation=
//     <new>: the TrafficSplit, ZeroTrustPolicy, Canary, ResiliencePolicy
//     and EgressPolicy controllers write the new mesh's outputs beside
//     the old mesh's (internal/outputs Alongside, Migrating; one apply,
//     dry run first). The wave waits until every new output exists.
//     TelemetryPolicy switches with the labels (docs/adoption.md).
//  2. Switch. In one recorded patch the old mesh's keys are removed and
//     the new mesh's set; the workloads restart behind the health gate.
//     Pods not yet restarted keep the old proxy and the old outputs.
//  3. After the gate passed, the migration annotations (and their
//     entries in the record) are removed: the controllers prune the old
//     mesh's outputs. A wave moved back instead restores the record
//     (old keys back, new keys and migration annotations gone): the
//     controllers prune the new mesh's outputs, the old ones were never
//     removed, and the workloads restart into the old mesh.

// migratingFrom returns the mesh ns is being moved out of: the one its
// migration annotation names (set by this adoption), or the one that
// enrols it explicitly today.
func (r *Reconciler) migratingFrom(s *scope, ns adoption.Namespace) (meshv1alpha1.Provider, bool) {
	target := s.mi.Spec.Provider
	if from, to, ok := mesh.Migration(ns.Annotations); ok && to == target {
		return from, true
	}
	return r.Registry.ExplicitMember(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}}, target)
}

// enrolOf is the enrolment of one namespace: enrolFor, plus, for a
// namespace moving from another mesh, the old mesh's keys removed, the
// migration annotations and a restart. ok reports a move between meshes.
func (r *Reconciler) enrolOf(s *scope, ns adoption.Namespace, waypoint bool) (mesh.Enrolment, meshv1alpha1.Provider, error) {
	e := s.enrolFor(waypoint)
	from, ok := r.migratingFrom(s, ns)
	if !ok {
		return modeMove(e, ns), "", nil
	}
	if e.WaypointLabel != "" || e.RestartWhenCleared {
		return e, "", outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason,
			"namespace %s is in %s's data plane: moving it between meshes straight into %s (%s) is not supported, because the outputs of that mode differ from those written beside the old mesh's before the switch; "+
				"move it with spec.mode Sidecar first, then to the other mode in a second adoption, or take it out of this adoption", ns.Name, from, s.mi.Spec.Provider, e.Describe)
	}
	old, err := r.Registry.Enroller(from)
	if err != nil {
		return e, "", err
	}
	labels, annotations, err := mesh.EnrolmentKeys(old)
	if err != nil {
		return e, "", err
	}
	out := e
	out.Annotations = map[string]string{mesh.MigratingFromAnnotation: string(from), mesh.MigratingToAnnotation: string(s.mi.Spec.Provider)}
	for k, v := range e.Annotations {
		out.Annotations[k] = v
	}
	out.ClearLabels = addMissing(slices.Clone(e.ClearLabels), labels, e.Labels)
	out.ClearAnnotations = addMissing(slices.Clone(e.ClearAnnotations), annotations, e.Annotations)
	out.Restart = true
	out.Describe = fmt.Sprintf("%s (from %s: %s removed)", e.Describe, from, strings.Join(append(slices.Clone(labels), annotations...), ", "))
	return out, from, nil
}

// modeMove adds to e, for a namespace that leaves a sidecar of the same
// mesh (Istio sidecar → ambient: e clears a sidecar label it has, or had
// when recorded), mesh.DataPlaneFromAnnotation=Sidecar: set and recorded
// in the enrolment's one patch, the controllers keep the outputs of the
// sidecar form beside the ambient ones while the pods restart. A passed
// gate removes it (finishMove), a failed one restores it with the record.
func modeMove(e mesh.Enrolment, ns adoption.Namespace) mesh.Enrolment {
	if !e.RestartWhenCleared || !adoption.Restarts(e, ns) {
		return e
	}
	out := e
	out.Annotations = map[string]string{mesh.DataPlaneFromAnnotation: string(mesh.Sidecar)}
	for k, v := range e.Annotations {
		out.Annotations[k] = v
	}
	return out
}

// addMissing appends to clear each key not already in it nor set.
func addMissing(clear, keys []string, set map[string]string) []string {
	for _, k := range keys {
		if _, isSet := set[k]; !isSet && !slices.Contains(clear, k) {
			clear = append(clear, k)
		}
	}
	return clear
}

// dualOutputs is step 1 of a move between meshes: it annotates ns for
// dual outputs (recorded) and reports what the switch still waits for:
// each output of the new mesh, for the namespace's TrafficSplits,
// ZeroTrustPolicies, Canaries, ResiliencePolicies and EgressPolicies, that
// does not exist yet. Empty: switch.
func (r *Reconciler) dualOutputs(ctx context.Context, s *scope, ns adoption.Namespace, from meshv1alpha1.Provider) ([]string, error) {
	pre := mesh.Enrolment{Annotations: map[string]string{mesh.MigratingFromAnnotation: string(from), mesh.MigratingToAnnotation: string(s.mi.Spec.Provider)}}
	if !adoption.Enrolled(pre, ns) {
		if err := r.relabel(ctx, ns, func() (map[string]string, map[string]string, error) { return adoption.Enrol(pre, ns, s.ma.Name) }); err != nil {
			return nil, err
		}
		r.event(s.ma, "DualOutputs", "Migrate", "namespace %s: writing %s's outputs beside %s's before the switch", ns.Name, s.mi.Spec.Provider, from)
		// The next pass reads the namespace as annotated.
		return []string{fmt.Sprintf("%s: %s's outputs being written beside %s's", ns.Name, s.mi.Spec.Provider, from)}, nil
	}
	return r.missingOutputs(ctx, s, ns)
}

// missingOutputs returns each output the target data plane will have for
// the objects of ns that does not exist yet.
func (r *Reconciler) missingOutputs(ctx context.Context, s *scope, ns adoption.Namespace) ([]string, error) {
	want, err := r.targetOutputs(ctx, s, ns)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, o := range want {
		gvk, err := apiutil.GVKForObject(o.obj, r.Scheme())
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		// An output lives in the namespace unless the mesh puts it
		// elsewhere (an egress gateway's namespace).
		in := o.obj.GetNamespace()
		if in == "" {
			in = ns.Name
		}
		switch err := r.Get(ctx, client.ObjectKey{Namespace: in, Name: o.obj.GetName()}, u); {
		case apierrors.IsNotFound(err):
			missing = append(missing, fmt.Sprintf("%s: %s %s of %s %s not written yet", ns.Name, gvk.Kind, o.obj.GetName(), o.kind, o.name))
		case err != nil:
			return nil, fmt.Errorf("reading %s %s/%s: %w", gvk.Kind, in, o.obj.GetName(), err)
		}
	}
	return missing, nil
}

// output is one output the new mesh will have for an object.
type output struct {
	kind, name string
	obj        client.Object
}

// targetOutputs translates the namespace's TrafficSplits,
// ZeroTrustPolicies, Canaries and ResiliencePolicies that name no
// provider for the target mesh, for the namespace as it will be, as their
// controllers do (meshadoption_controller_dual.go for the last two).
func (r *Reconciler) targetOutputs(ctx context.Context, s *scope, ns adoption.Namespace) ([]output, error) {
	e, _, err := r.enrolOf(s, ns, false)
	if err != nil {
		return nil, err
	}
	sc, err := r.scopeOf(ctx, s, ns, e, nil)
	if err != nil {
		return nil, err
	}
	var ts meshv1alpha1.TrafficSplitList
	var ztp meshv1alpha1.ZeroTrustPolicyList
	for _, l := range []client.ObjectList{&ts, &ztp} {
		if err := r.List(ctx, l, client.InNamespace(ns.Name)); err != nil {
			return nil, err
		}
	}
	var out []output
	add := func(kind, name string, objs []client.Object, err error) error {
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", kind, ns.Name, name, err)
		}
		for _, o := range objs {
			out = append(out, output{kind, name, o})
		}
		return nil
	}
	provider := s.mi.Spec.Provider
	for i := range ts.Items {
		if x := &ts.Items[i]; x.Spec.Provider == "" {
			t, err := r.Registry.TrafficTranslator(provider)
			if err != nil {
				return nil, err
			}
			if x, err = r.withPort(ctx, x); err != nil {
				return nil, err
			}
			objs, err := mesh.TranslateTrafficSplit(t, x, sc.Namespace)
			if err := add("TrafficSplit", x.Name, objs, err); err != nil {
				return nil, err
			}
		}
	}
	for i := range ztp.Items {
		if x := &ztp.Items[i]; x.Spec.Provider == "" {
			t, err := r.Registry.PolicyTranslator(provider)
			if err != nil {
				return nil, err
			}
			eff, _ := mesh.Effective(x, ns.Annotations)
			objs, err := mesh.TranslateZeroTrustPolicy(t, eff, sc.Namespace)
			if err := add("ZeroTrustPolicy", x.Name, objs, err); err != nil {
				return nil, err
			}
		}
	}
	more, err := r.routedOutputs(ctx, ns.Name, provider, sc)
	return append(out, more...), err
}

// finishMove is step 3 of a move between meshes, once the wave passed
// its gate: the migration annotations and their entries in the record are
// removed, so the controllers prune the old mesh's outputs. For a move
// from sidecar to ambient it removes mesh.DataPlaneFromAnnotation the same
// way: the sidecar form of the outputs is pruned.
func (r *Reconciler) finishMove(ctx context.Context, s *scope, wave []adoption.Namespace) error {
	for _, ns := range wave {
		_, to, moving := mesh.Migration(ns.Annotations)
		moving = moving && to == s.mi.Spec.Provider
		_, modeMoving := ns.Annotations[mesh.DataPlaneFromAnnotation]
		if !moving && !modeMoving || ns.Annotations[adoption.OwnerAnnotation] != s.ma.Name {
			continue
		}
		var cur corev1.Namespace
		if err := r.Get(ctx, client.ObjectKey{Name: ns.Name}, &cur); err != nil {
			return err
		}
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		rec, err := adoption.ReadRecord(adoption.Namespace{Name: cur.Name, Annotations: cur.Annotations})
		if err != nil {
			return outcome.Stalled(meshv1alpha1.RecordLostReason, "%v", err)
		}
		for _, k := range []string{mesh.MigratingFromAnnotation, mesh.MigratingToAnnotation, mesh.DataPlaneFromAnnotation} {
			delete(cur.Annotations, k)
			delete(rec.Annotations, k)
		}
		raw, _ := json.Marshal(rec)
		cur.Annotations[adoption.PriorAnnotation] = string(raw)
		if err := r.Patch(ctx, &cur, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
			return fmt.Errorf("ending the move of namespace %s: %w", ns.Name, err)
		}
		if moving {
			r.event(s.ma, "MoveFinished", "Migrate", "namespace %s passed its gate in %s: %s's outputs are pruned", ns.Name, s.mi.Spec.Provider, ns.Annotations[mesh.MigratingFromAnnotation])
		} else {
			r.event(s.ma, "MoveFinished", "Migrate", "namespace %s passed its gate in %s's ambient data plane: the sidecar form of its outputs is pruned", ns.Name, s.mi.Spec.Provider)
		}
	}
	return nil
}
