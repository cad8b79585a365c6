package breakglass

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// result is what the phases found and did.
type result struct {
	phase           meshv1alpha1.BreakGlassPhase
	provider        meshv1alpha1.Provider
	record          *incident.Record
	secret          string
	secretNamespace string
	applied         int // changes in the wanted state
	writes          int // objects patched by this reconcile
	conflicts       []incident.Conflict
	restoring       bool
	requeueAfter    time.Duration
	// now is when the reconcile ran.
	now time.Time
}

func (o *result) summary() string {
	if o.record == nil {
		return "nothing recorded yet"
	}
	return fmt.Sprintf("%d of %d recorded change(s) in place, %d namespace(s), %d conflict(s)",
		o.applied, len(o.record.Changes), len(o.record.Namespaces), len(o.conflicts))
}

// expired reports whether bg's expiresAfter has passed.
func expired(bg *meshv1alpha1.BreakGlass, now time.Time) (bool, time.Duration) {
	if bg.Spec.ExpiresAfter == nil || bg.Status.StartTime == nil {
		return false, 0
	}
	at := bg.Status.StartTime.Add(bg.Spec.ExpiresAfter.Duration)
	left := at.Sub(now)
	return left <= 0, left
}

func (r *Reconciler) reconcile(ctx context.Context, bg *meshv1alpha1.BreakGlass) (result, error) {
	out := result{phase: bg.Status.Phase, provider: bg.Status.Provider, now: r.clock().Now()}
	over, left := expired(bg, out.now)
	if !bg.DeletionTimestamp.IsZero() || over {
		return r.restore(ctx, bg, out)
	}
	if bg.Status.Phase == meshv1alpha1.BreakGlassRestored {
		return out, nil
	}
	rec, data, err := r.loadRecord(ctx, bg)
	if err != nil {
		out.phase = lostPhase(err, out.phase)
		return out, err
	}
	if rec == nil {
		if err := r.recordLost(ctx, bg); err != nil {
			out.phase = lostPhase(err, out.phase)
			return out, err
		}
		out.phase = meshv1alpha1.BreakGlassPending
		if rec, err = r.plan(ctx, bg); err != nil {
			return out, err
		}
		if err := r.writeRecord(ctx, bg, rec); err != nil {
			return out, err
		}
	} else if bg.Status.Record == nil {
		// Written by an operator stopped before it copied it.
		if err := r.saveCopy(ctx, bg, rec, data); err != nil {
			return out, err
		}
	}
	out.record, out.secret, out.secretNamespace, out.provider = rec, secretName(bg), r.OperatorNamespace, meshv1alpha1.Provider(rec.Provider)
	if bg.Status.Phase == meshv1alpha1.BreakGlassEngaged {
		// Engaged: nothing is re-applied (someone may deliberately undo a
		// field during the incident; the restore then reports it).
		out.applied = len(rec.Changes)
		out.phase = meshv1alpha1.BreakGlassEngaged
		out.requeueAfter = requeueFor(bg, left)
		return out, nil
	}
	out.phase = meshv1alpha1.BreakGlassEngaging
	pending, err := r.engage(ctx, bg, rec, &out)
	if err != nil {
		return out, err
	}
	if pending > 0 {
		out.requeueAfter = r.RestartPace
		if out.requeueAfter <= 0 {
			out.requeueAfter = DefaultRestartPace
		}
		return out, nil
	}
	out.phase = meshv1alpha1.BreakGlassEngaged
	if bg.Spec.ExpiresAfter != nil {
		start, _ := time.Parse(time.RFC3339Nano, rec.StartTime)
		out.requeueAfter = max(start.Add(bg.Spec.ExpiresAfter.Duration).Sub(out.now), time.Second)
	}
	return out, nil
}

// lostPhase is Failed when err reports a lost record (never Engaged nor
// Restored), else the phase unchanged.
func lostPhase(err error, phase meshv1alpha1.BreakGlassPhase) meshv1alpha1.BreakGlassPhase {
	if outcome.Reason(err, "") == meshv1alpha1.RecordLostReason {
		return meshv1alpha1.BreakGlassFailed
	}
	return phase
}

func requeueFor(bg *meshv1alpha1.BreakGlass, left time.Duration) time.Duration {
	if bg.Spec.ExpiresAfter == nil {
		return 0
	}
	return max(left, time.Second)
}

// engage applies the record step by step; it returns the number of
// workload restarts still to do (paced in batches).
func (r *Reconciler) engage(ctx context.Context, bg *meshv1alpha1.BreakGlass, rec *incident.Record, out *result) (int, error) {
	for _, step := range incident.EngageOrder {
		objs := rec.StepObjects(step)
		if step == incident.StepWorkloads {
			return r.engageWorkloads(ctx, bg, objs, out)
		}
		if err := r.runStep(ctx, bg, objs, false, out); err != nil {
			return 0, fmt.Errorf("engaging (%s): %w", step, err)
		}
	}
	return 0, nil
}

// engageWorkloads restarts at most one batch per reconcile: progress is
// read back from the cluster (how many restart annotations are in place).
func (r *Reconciler) engageWorkloads(ctx context.Context, bg *meshv1alpha1.BreakGlass, objs []incident.ObjectChanges, out *result) (int, error) {
	var pending []incident.ObjectChanges
	for _, oc := range objs {
		live, err := r.getLive(ctx, oc.Object)
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return 0, err
		}
		if incident.Classify(live, oc.Changes[0]) == incident.Pending {
			pending = append(pending, oc)
		} else {
			out.applied += len(oc.Changes)
		}
	}
	batch := int(bg.Spec.Actions.RestartBatchSize)
	if batch <= 0 {
		batch = 10
	}
	now := pending[:min(batch, len(pending))]
	if err := r.runStep(ctx, bg, now, false, out); err != nil {
		return 0, fmt.Errorf("restarting workloads: %w", err)
	}
	return len(pending) - len(now), nil
}

// restore puts back the record, then removes it and the finalizer. A
// lost record stops it (Stalled RecordLost) until the record is recreated
// or its loss accepted (AcceptRecordLossAnnotation on a deleted
// BreakGlass).
func (r *Reconciler) restore(ctx context.Context, bg *meshv1alpha1.BreakGlass, out result) (result, error) {
	if bg.Status.Phase == meshv1alpha1.BreakGlassRestored {
		// Restored (and recorded so) before the record was deleted; the
		// conflicts of that pass stay in status.
		controllerutil.RemoveFinalizer(bg, Finalizer)
		return out, r.deleteRecord(ctx, bg)
	}
	out.restoring = true
	rec, _, err := r.loadRecord(ctx, bg)
	if err != nil {
		out.phase = lostPhase(err, out.phase)
		return out, err
	}
	if rec == nil {
		if err := r.recordLost(ctx, bg); err != nil {
			if bg.DeletionTimestamp.IsZero() || bg.Annotations[AcceptRecordLossAnnotation] != "true" {
				out.phase = meshv1alpha1.BreakGlassFailed
				return out, err
			}
			if err := r.releaseMarks(ctx, bg); err != nil {
				return out, err
			}
			r.Events.Eventf(bg, nil, corev1.EventTypeWarning, meshv1alpha1.RecordLostReason, "BreakGlass",
				"record lost and the loss accepted (%s): nothing was restored; removed only the NotIn requirement and the coverage annotations", AcceptRecordLossAnnotation)
			controllerutil.RemoveFinalizer(bg, Finalizer)
			out.phase = meshv1alpha1.BreakGlassFailed
			return out, nil
		}
	}
	if rec != nil {
		out.phase = meshv1alpha1.BreakGlassRestoring
		out.record, out.secret, out.secretNamespace = rec, secretName(bg), r.OperatorNamespace
		for _, step := range incident.RestoreOrder {
			if err := r.runStep(ctx, bg, rec.StepObjects(step), true, &out); err != nil {
				return out, fmt.Errorf("restoring (%s): %w", step, err)
			}
		}
		// Restored is stored before the record goes: a record missing
		// after that is not a loss.
		if err := r.markRestored(ctx, bg, &out); err != nil {
			return out, err
		}
		if err := r.deleteRecord(ctx, bg); err != nil {
			return out, err
		}
	}
	out.phase = meshv1alpha1.BreakGlassRestored
	controllerutil.RemoveFinalizer(bg, Finalizer)
	return out, nil
}

// target resolves the provider and driver, and the MeshInstall when the
// target names one.
func (r *Reconciler) target(ctx context.Context, bg *meshv1alpha1.BreakGlass) (mesh.BreakGlassDriver, *meshv1alpha1.MeshInstall, error) {
	p := bg.Spec.Target.Provider
	var mi *meshv1alpha1.MeshInstall
	if ref := bg.Spec.Target.MeshInstallRef; ref != nil {
		mi = &meshv1alpha1.MeshInstall{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: ref.Name}, mi); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
					"MeshInstall %s (spec.target.meshInstallRef) does not exist; create it, or delete this BreakGlass and target spec.target.provider instead", ref.Name)
			}
			return nil, nil, err
		}
		p = mi.Spec.Provider
	}
	d, err := r.Registry.BreakGlassDriver(p)
	if err != nil {
		return nil, nil, err
	}
	return d, mi, nil
}

// scope returns the namespaces in scope, computed once when engaging.
func (r *Reconciler) scope(ctx context.Context, bg *meshv1alpha1.BreakGlass, d mesh.BreakGlassDriver, mi *meshv1alpha1.MeshInstall) ([]corev1.Namespace, error) {
	var list corev1.NamespaceList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	var installs meshv1alpha1.MeshInstallList
	if mi != nil {
		if err := r.Client.List(ctx, &installs); err != nil {
			return nil, err
		}
	}
	sc := bg.Spec.Scope
	var sel interface{ Matches(labelsLike) bool }
	if sc != nil && sc.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(sc.NamespaceSelector)
		if err != nil {
			return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.scope.namespaceSelector: %v", err)
		}
		sel = selectorAdapter{s}
	}
	held, err := r.heldByOthers(ctx, bg, list.Items)
	if err != nil {
		return nil, err
	}
	var out []corev1.Namespace
	taken := map[string]string{}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		var in bool
		switch {
		case sc != nil && len(sc.Namespaces) > 0:
			in = slices.Contains(sc.Namespaces, ns.Name)
		case sel != nil:
			in = sel.Matches(labelsLike(ns.Labels))
		default:
			in = serves(r.Registry, d, mi, &ns, installs.Items)
		}
		if in && held[ns.Name] != "" {
			taken[ns.Name] = held[ns.Name]
			continue // held by another BreakGlass, which restores it
		}
		if in {
			out = append(out, ns)
		}
	}
	if err := scopeProblem(sc, list.Items, len(out)+len(taken)); err != nil {
		return nil, err
	}
	if len(taken) > 0 && (len(out) == 0 || (sc != nil && len(sc.Namespaces) > 0)) {
		return nil, heldConflict(taken)
	}
	return out, nil
}

// scopeProblem refuses a scope that would engage while holding nothing it
// was asked to hold: a listed namespace that does not exist or is being
// deleted, or a selector that matches no namespace. Nothing is recorded or
// changed.
func scopeProblem(sc *meshv1alpha1.BreakGlassScope, nss []corev1.Namespace, matched int) error {
	const fix = "nothing was changed; scope is immutable: delete this BreakGlass and create one"
	if sc != nil && len(sc.Namespaces) > 0 {
		byName := make(map[string]*corev1.Namespace, len(nss))
		for i := range nss {
			byName[nss[i].Name] = &nss[i]
		}
		var probs []string
		for i, n := range sc.Namespaces {
			switch ns := byName[n]; {
			case ns == nil:
				probs = append(probs, fmt.Sprintf("spec.scope.namespaces[%d]: namespace %q does not exist", i, n))
			case ns.DeletionTimestamp != nil:
				probs = append(probs, fmt.Sprintf("spec.scope.namespaces[%d]: namespace %q is being deleted", i, n))
			}
		}
		if len(probs) > 0 {
			return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%s; %s that lists existing namespaces only", strings.Join(probs, "; "), fix)
		}
	}
	if sc != nil && sc.NamespaceSelector != nil && matched == 0 {
		sel, _ := metav1.LabelSelectorAsSelector(sc.NamespaceSelector)
		return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.scope.namespaceSelector (%s) matches no namespace; %s whose selector matches the namespaces to detach", sel, fix)
	}
	return nil
}

// heldByOthers maps each namespace another active BreakGlass holds to its
// name: the namespaces of its record (status.record, written before it
// changes anything) and those carrying its coverage annotation.
func (r *Reconciler) heldByOthers(ctx context.Context, bg *meshv1alpha1.BreakGlass, nss []corev1.Namespace) (map[string]string, error) {
	// Uncached: another BreakGlass's status.record may have been written a
	// moment ago.
	var list meshv1alpha1.BreakGlassList
	if err := r.APIReader.List(ctx, &list); err != nil {
		return nil, err
	}
	active := map[string]bool{}
	held := map[string]string{}
	for i := range list.Items {
		o := &list.Items[i]
		if o.UID == bg.UID || !incident.Active(o) {
			continue
		}
		active[o.Name] = true
		nss, err := r.recordedScope(ctx, o)
		if err != nil {
			return nil, err
		}
		for _, n := range nss {
			held[n] = o.Name
		}
	}
	for _, ns := range nss {
		if other := ns.Annotations[incident.NamespaceAnnotation]; other != "" && other != bg.Name && active[other] {
			held[ns.Name] = other
		}
	}
	return held, nil
}

// heldConflict reports the namespaces of the scope other BreakGlasses
// hold: a namespace is held by one BreakGlass at a time.
func heldConflict(taken map[string]string) error {
	names := make([]string, 0, len(taken))
	for n := range taken {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("namespace %s is already held by BreakGlass %s", n, taken[n]))
	}
	return outcome.Conflict("%s; this BreakGlass holds nothing and changed nothing. It engages by itself once the other is deleted and restored; or delete it and list in spec.scope.namespaces only namespaces no other BreakGlass holds",
		strings.Join(parts, "; "))
}

// plan reads the cluster and computes the record.
func (r *Reconciler) plan(ctx context.Context, bg *meshv1alpha1.BreakGlass) (*incident.Record, error) {
	d, mi, err := r.target(ctx, bg)
	if err != nil {
		return nil, err
	}
	nss, err := r.scope(ctx, bg, d, mi)
	if err != nil {
		return nil, err
	}
	in := incident.Inputs{
		BreakGlass: bg.Name, Driver: d, Now: r.clock().Now(),
		WholeMesh: bg.Spec.Scope == nil || (bg.Spec.Scope.NamespaceSelector == nil && len(bg.Spec.Scope.Namespaces) == 0),
		Actions: incident.Actions{
			DetachInjection:  on(bg.Spec.Actions.DetachInjection),
			RelaxPolicies:    on(bg.Spec.Actions.RelaxPolicies),
			RestartWorkloads: bg.Spec.Actions.RestartWorkloads,
		},
	}
	inScope := map[string]bool{}
	names := make([]string, 0, len(nss))
	for i := range nss {
		inScope[nss[i].Name] = true
		names = append(names, nss[i].Name)
		m, err := toMap(&nss[i], "v1", "Namespace")
		if err != nil {
			return nil, err
		}
		in.Namespaces = append(in.Namespaces, m)
	}
	slices.Sort(names)
	if in.Mutating, in.Validating, err = r.webhooks(ctx); err != nil {
		return nil, err
	}
	if in.Actions.RelaxPolicies {
		if in.Policies, err = r.policies(ctx, d, inScope, bg.Spec.Actions.IncludeForeignPolicies); err != nil {
			return nil, err
		}
	}
	if in.Actions.RestartWorkloads {
		if in.Workloads, err = r.workloads(ctx, inScope); err != nil {
			return nil, err
		}
	}
	rec := &incident.Record{
		Version: incident.RecordVersion, BreakGlass: bg.Name, UID: string(bg.UID), Provider: string(d.Name()),
		Namespaces: names, WholeMesh: in.WholeMesh, StartTime: in.Now.UTC().Format(time.RFC3339Nano),
		Changes: incident.Plan(in),
	}
	if on(bg.Spec.Actions.PinTraffic) {
		if rec.TrafficRoutes, err = r.trafficRoutes(ctx, bg, inScope); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func on(b *bool) bool { return b == nil || *b }
