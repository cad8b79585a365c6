package meshinstall

import (
	"context"
	"fmt"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/install"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// defaultRetention is how long an unused old revision is kept by default.
const defaultRetention = 10 * time.Minute

// reconcileRevisionBased runs Istio with one MeshRevision per version: the
// shared charts (base, and cni and ztunnel for Ambient) are installed in
// place; istiod comes from the MeshRevision of spec.version. Once that
// revision is Ready the default tag moves to it, namespaces migrate in
// batches, and old revisions are removed when nothing uses them.
func (r *Reconciler) reconcileRevisionBased(ctx context.Context, mi *meshv1alpha1.MeshInstall, p mesh.Installer, ns string, charts []mesh.Chart, id *mesh.Identity) (ctrl.Result, error) {
	shared := slices.DeleteFunc(slices.Clone(charts), func(c mesh.Chart) bool { return c.Name == "istiod" })
	rels, err := r.desiredReleases(ctx, mi, p, ns, shared, mi.Spec.Version, "", id)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyReleases(ctx, mi, rels); err != nil {
		return ctrl.Result{}, err
	}
	revs, err := r.revisions(ctx, mi)
	if err != nil {
		return ctrl.Result{}, err
	}
	target := targetRevision(mi, revs)
	rev, err := r.ensureRevision(ctx, mi, target, revs)
	if err != nil {
		return ctrl.Result{}, err
	}
	active := mi.Status.ActiveRevision
	u := mi.Status.Upgrade
	if active != "" && active != target && (u == nil || u.TargetRevision != target) {
		now := metav1.NewTime(r.now())
		u = &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeWaitingForRevision, FromVersion: mi.Status.InstalledVersion,
			ToVersion: mi.Spec.Version, FromRevision: active, TargetRevision: target, StartTime: &now}
		mi.Status.Upgrade = u
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "UpgradeStarted", "upgrading %s → %s: installing revision %s beside %s",
			u.FromVersion, u.ToVersion, target, active)
	}
	r.summarizeRevisions(mi, revs, rev)
	if err := r.checkHealth(ctx, mi, p, rels); err != nil {
		return ctrl.Result{}, err
	}
	if !revisionReady(rev) {
		return ctrl.Result{}, waiting(meshv1alpha1.ProgressingReason, 0, "waiting for MeshRevision %s (%s) to become Ready", target, mi.Spec.Version)
	}
	if mi.Spec.Upgrade.Abort && u != nil && u.TargetRevision == target && u.FromRevision != "" {
		return ctrl.Result{}, r.abort(ctx, mi, ns)
	}
	if err := r.moveTag(ctx, mi, defaultTag(mi), target, ns); err != nil {
		return ctrl.Result{}, err
	}
	if active != target {
		mi.Status.ActiveRevision = target
	}
	mi.Status.InstalledVersion = mi.Spec.Version
	if u != nil && u.TargetRevision == target && u.Phase != meshv1alpha1.UpgradeCompleted && u.Phase != meshv1alpha1.UpgradeCleaningUp {
		t := upgrade.Target{FromRevision: u.FromRevision, ToRevision: target, PodRevision: target, Restart: restartWorkloads(mi)}
		nss, err := r.revisionNamespaces(ctx, mi, ns, t)
		if err != nil {
			return ctrl.Result{}, err
		}
		done, err := r.migrate(ctx, mi, t, nss)
		if err != nil || !done {
			return ctrl.Result{}, err
		}
		u.Phase, u.CurrentBatch = meshv1alpha1.UpgradeCleaningUp, nil
		u.Message = fmt.Sprintf("%d namespaces run %s; removing revision %s once unused", u.TotalNamespaces, target, u.FromRevision)
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "MigrationCompleted", "%d namespaces migrated to revision %s", u.TotalNamespaces, target)
	}
	remaining, after, err := r.cleanup(ctx, mi, revs, target)
	if err != nil {
		return ctrl.Result{}, err
	}
	if u != nil && u.Phase == meshv1alpha1.UpgradeCleaningUp {
		if slices.Contains(remaining, u.FromRevision) {
			return ctrl.Result{}, waiting(meshv1alpha1.ProgressingReason, after, "waiting to remove revision %s: %s", u.FromRevision, u.Message)
		}
		u.Phase = meshv1alpha1.UpgradeCompleted
		u.Message = fmt.Sprintf("upgraded to %s (revision %s); revision %s removed", u.ToVersion, target, u.FromRevision)
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "UpgradeCompleted", "%s", u.Message)
	}
	if after > 0 {
		return ctrl.Result{RequeueAfter: after}, nil
	}
	return ctrl.Result{}, nil
}

// abort moves the default tag back to the previous revision and every
// namespace that moved, then stalls with UpgradeAborted.
func (r *Reconciler) abort(ctx context.Context, mi *meshv1alpha1.MeshInstall, ns string) error {
	u := mi.Status.Upgrade
	if err := r.moveTag(ctx, mi, defaultTag(mi), u.FromRevision, ns); err != nil {
		return err
	}
	mi.Status.ActiveRevision, mi.Status.InstalledVersion = u.FromRevision, u.FromVersion
	if u.Phase != meshv1alpha1.UpgradeAborting {
		now := metav1.NewTime(r.now())
		u.Phase, u.BatchStartTime = meshv1alpha1.UpgradeAborting, &now
		r.Recorder.Eventf(mi, corev1.EventTypeWarning, "UpgradeAborting", "spec.upgrade.abort: moving the default tag and every migrated namespace back to revision %s", u.FromRevision)
	}
	t := stamped(upgrade.Target{FromRevision: u.TargetRevision, ToRevision: u.FromRevision, PodRevision: u.FromRevision, Restart: restartWorkloads(mi)}, u.BatchStartTime)
	all, err := r.revisionNamespaces(ctx, mi, ns, t)
	if err != nil {
		return err
	}
	// Only namespaces the upgrade touched move back: those relabelled and
	// those whose pods run the new revision.
	var moved []upgrade.Namespace
	for _, n := range all {
		touched := n.Labels[istio.RevLabel] == u.TargetRevision || n.PodRevisions[u.TargetRevision] > 0
		for _, w := range n.Workloads {
			touched = touched || w.DataPlane == t.DataPlane
		}
		if touched {
			moved = append(moved, n)
		}
	}
	u.CurrentBatch = nil
	if err := r.applyBatch(ctx, mi, t, moved); err != nil {
		return err
	}
	if gate := upgrade.CheckBatch(t, moved); !gate.Passed {
		u.Message = "moving back, waiting for: " + joinMax(gate.Waiting, 3)
		return waiting(meshv1alpha1.ProgressingReason, pollInterval, "aborting the upgrade: %s", u.Message)
	}
	u.Phase = meshv1alpha1.UpgradeFailed
	u.Message = fmt.Sprintf("aborted: every namespace is back on revision %s (%s)", u.FromRevision, u.FromVersion)
	return outcome.Stalled(meshv1alpha1.UpgradeAbortedReason, "%s; set spec.version back to %s, or clear spec.upgrade.abort to retry the upgrade",
		u.Message, u.FromVersion)
}

// revisions lists the MeshRevisions of this MeshInstall.
func (r *Reconciler) revisions(ctx context.Context, mi *meshv1alpha1.MeshInstall) ([]meshv1alpha1.MeshRevision, error) {
	var list meshv1alpha1.MeshRevisionList
	if err := r.List(ctx, &list); err != nil {
		return nil, err
	}
	var out []meshv1alpha1.MeshRevision
	for _, rv := range list.Items {
		if rv.Spec.MeshInstallRef.Name == mi.Name {
			out = append(out, rv)
		}
	}
	return out, nil
}

// targetRevision names the revision spec.version runs in: an existing
// revision of that version, else spec.istio.revision for the first
// install, else the version's revision name (1.28.1 → 1-28-1).
func targetRevision(mi *meshv1alpha1.MeshInstall, revs []meshv1alpha1.MeshRevision) string {
	for _, rv := range revs {
		if rv.Name == mi.Status.ActiveRevision && rv.Spec.Version == mi.Spec.Version {
			return rv.Name
		}
	}
	for _, rv := range revs {
		if rv.Spec.Version == mi.Spec.Version && ownership.IsOwnedBy(&rv, "MeshInstall", "", mi.Name) {
			return rv.Name
		}
	}
	if mi.Status.ActiveRevision == "" && mi.Spec.Istio != nil && mi.Spec.Istio.Revision != "" {
		return mi.Spec.Istio.Revision
	}
	return istio.RevisionName(mi.Spec.Version)
}

// ensureRevision creates the MeshRevision of the target when missing. A
// revision of that name staged by someone else is used when it runs the
// same version, else it is a Conflict.
func (r *Reconciler) ensureRevision(ctx context.Context, mi *meshv1alpha1.MeshInstall, name string, revs []meshv1alpha1.MeshRevision) (*meshv1alpha1.MeshRevision, error) {
	for i := range revs {
		if revs[i].Name == name {
			if revs[i].Spec.Version != mi.Spec.Version {
				return nil, outcome.Stalled(meshv1alpha1.ConflictReason, "MeshRevision %s runs %s, not spec.version %s; delete it or choose another version",
					name, revs[i].Spec.Version, mi.Spec.Version)
			}
			return &revs[i], nil
		}
	}
	rv := &meshv1alpha1.MeshRevision{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ownership.Labels("MeshInstall", "", mi.Name)},
		Spec:       meshv1alpha1.MeshRevisionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: mi.Name}, Version: mi.Spec.Version},
	}
	if err := r.Create(ctx, rv, client.FieldOwner(ownership.FieldManager)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, outcome.Stalled(meshv1alpha1.ConflictReason, "MeshRevision %s exists and belongs to another MeshInstall; choose another version or revision", name)
		}
		return nil, err
	}
	r.Recorder.Eventf(mi, corev1.EventTypeNormal, "RevisionCreated", "created MeshRevision %s for %s", name, mi.Spec.Version)
	return rv, nil
}

func revisionReady(rv *meshv1alpha1.MeshRevision) bool {
	c := status.Get(&rv.Status.CommonStatus, meshv1alpha1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && rv.Status.ObservedGeneration == rv.Generation
}

func defaultTag(mi *meshv1alpha1.MeshInstall) string {
	if mi.Spec.Istio != nil && mi.Spec.Istio.DefaultTag != "" {
		return mi.Spec.Istio.DefaultTag
	}
	return "default"
}

// moveTag points a revision tag at revision with one write of its webhook
// configuration, derived from the revision's injector. A tag webhook
// Meshplane did not create is a Conflict, unless spec.adopt is set.
func (r *Reconciler) moveTag(ctx context.Context, mi *meshv1alpha1.MeshInstall, tag, revision, ns string) error {
	var injector admissionregistrationv1.MutatingWebhookConfiguration
	if err := r.Get(ctx, client.ObjectKey{Name: istio.InjectorWebhookName(revision, ns)}, &injector); err != nil {
		if apierrors.IsNotFound(err) {
			return waiting(meshv1alpha1.ProgressingReason, 2*time.Second, "waiting for the injector %s of revision %s", istio.InjectorWebhookName(revision, ns), revision)
		}
		return err
	}
	want, err := install.TagWebhook(tag, revision, &injector)
	if err != nil {
		return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%v", err)
	}
	for k, v := range ownership.Labels("MeshInstall", "", mi.Name) {
		want.Labels[k] = v
	}
	var cur admissionregistrationv1.MutatingWebhookConfiguration
	err = r.Get(ctx, client.ObjectKey{Name: want.Name}, &cur)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Create(ctx, want, client.FieldOwner(ownership.FieldManager)); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if !ownership.IsOwnedBy(&cur, "MeshInstall", "", mi.Name) && mi.Spec.Adopt == nil {
			return outcome.Stalled(meshv1alpha1.ConflictReason, "revision tag webhook %s exists and was not created by Meshplane; "+
				"remove it (istioctl tag remove %s) or set spec.adopt to take it over", want.Name, tag)
		}
		if cur.Labels[istio.RevLabel] == revision && equality.Semantic.DeepEqual(cur.Webhooks, want.Webhooks) && labelsContain(cur.Labels, want.Labels) {
			return nil
		}
		cur.Labels = mergeLabels(cur.Labels, want.Labels)
		cur.Webhooks = want.Webhooks
		if err := r.Update(ctx, &cur, client.FieldOwner(ownership.FieldManager)); err != nil {
			return err
		}
	}
	r.Recorder.Eventf(mi, corev1.EventTypeNormal, "TagMoved", "revision tag %s now points at revision %s", tag, revision)
	return nil
}

// revisionNamespaces lists the namespaces a revision-based migration
// covers: those selecting the old or new revision explicitly and those
// following the default tag.
func (r *Reconciler) revisionNamespaces(ctx context.Context, mi *meshv1alpha1.MeshInstall, controlPlane string, t upgrade.Target) ([]upgrade.Namespace, error) {
	tag := defaultTag(mi)
	return r.collectNamespaces(ctx, mi, controlPlane, func(ns *corev1.Namespace) bool {
		l := ns.Labels
		switch {
		case l[istio.InjectionLabel] == "enabled":
			return tag == "default"
		case l[istio.InjectionLabel] == "disabled":
			return false
		}
		rev := l[istio.RevLabel]
		return rev != "" && (rev == t.FromRevision || rev == t.ToRevision || rev == tag)
	})
}

// cleanup deletes MeshRevisions this MeshInstall created that are neither
// the target nor in use and have been unused for the retention period. It
// returns the revisions that remain besides the target and when to look
// again.
func (r *Reconciler) cleanup(ctx context.Context, mi *meshv1alpha1.MeshInstall, revs []meshv1alpha1.MeshRevision, target string) ([]string, time.Duration, error) {
	retention := defaultRetention
	if mi.Spec.Upgrade != nil && mi.Spec.Upgrade.RevisionRetention != nil {
		retention = mi.Spec.Upgrade.RevisionRetention.Duration
	}
	var remaining []string
	var after time.Duration
	now := r.now()
	for i := range revs {
		rv := &revs[i]
		if rv.Name == target || !ownership.IsOwnedBy(rv, "MeshInstall", "", mi.Name) {
			continue
		}
		remaining = append(remaining, rv.Name)
		if !rv.DeletionTimestamp.IsZero() {
			after = minPositive(after, 2*time.Second)
			continue
		}
		if !rv.Status.Deletable || rv.Status.UnusedSince == nil || rv.Status.ObservedGeneration != rv.Generation {
			after = minPositive(after, 5*time.Second)
			continue
		}
		if wait := retention - now.Sub(rv.Status.UnusedSince.Time); wait > 0 {
			after = minPositive(after, wait)
			continue
		}
		if err := r.Delete(ctx, rv); client.IgnoreNotFound(err) != nil {
			return nil, 0, err
		}
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "RevisionRemoved", "removing MeshRevision %s: unused since %s", rv.Name, rv.Status.UnusedSince.Format(time.RFC3339))
		after = minPositive(after, 2*time.Second)
	}
	return remaining, after, nil
}

// summarizeRevisions records the revisions in status.
func (r *Reconciler) summarizeRevisions(mi *meshv1alpha1.MeshInstall, revs []meshv1alpha1.MeshRevision, target *meshv1alpha1.MeshRevision) {
	var out []meshv1alpha1.RevisionSummary
	seen := false
	for i := range revs {
		rv := &revs[i]
		seen = seen || rv.Name == target.Name
		out = append(out, meshv1alpha1.RevisionSummary{Name: rv.Name, Version: rv.Spec.Version, Ready: revisionReady(rv), Tags: rv.Status.Tags})
	}
	if !seen {
		out = append(out, meshv1alpha1.RevisionSummary{Name: target.Name, Version: target.Spec.Version})
	}
	slices.SortFunc(out, func(a, b meshv1alpha1.RevisionSummary) int { return cmpStr(a.Name, b.Name) })
	if len(out) > 16 {
		out = out[:16]
	}
	mi.Status.Revisions = out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

func labelsContain(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
