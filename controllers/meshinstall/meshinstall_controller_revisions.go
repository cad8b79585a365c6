package meshinstall

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

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// defaultRetention is how long an unused old revision is kept by default.
const defaultRetention = 10 * time.Minute

// reconcileRevisionBased runs the mesh with one MeshRevision per version:
// the shared charts (all but the revision chart) are installed in place;
// the revision chart comes from the MeshRevision of spec.version. Once
// that revision is Ready the default tag moves to it, namespaces migrate in
// batches, and old revisions are removed when nothing uses them.
func (r *Reconciler) reconcileRevisionBased(ctx context.Context, s *scope) (result, error) {
	mi := s.mi
	shared := slices.DeleteFunc(slices.Clone(s.charts), s.isRevisionChart)
	rels, err := r.desiredReleases(ctx, s, shared, mi.Spec.Version, "")
	if err != nil {
		return result{}, err
	}
	revs, err := r.revisions(ctx, mi)
	if err != nil {
		return result{}, err
	}
	target := targetRevision(s, revs)
	next, err := r.revisionRelease(ctx, s, target)
	if err != nil {
		return result{}, err
	}
	if err := r.applyReleases(ctx, s, rels, next...); err != nil {
		return result{}, err
	}
	if u := mi.Status.Upgrade; mi.Status.ActiveRevision == target && u != nil && u.Phase != meshv1alpha1.UpgradeAborting {
		// spec.version is back at the active revision's.
		r.closeReverted(mi)
	}
	rev, err := r.ensureRevision(ctx, mi, target, revs)
	if err != nil {
		return result{}, err
	}
	r.startRevisionUpgrade(mi, target)
	summarizeRevisions(mi, revs, rev)
	if err := r.checkHealth(ctx, s, rels, rev.Status.Components...); err != nil {
		return result{}, err
	}
	if !revisionReady(rev) {
		return result{}, outcome.Wait(meshv1alpha1.ProgressingReason, 0, "waiting for MeshRevision %s (%s) to become Ready", target, mi.Spec.Version)
	}
	if u := mi.Status.Upgrade; mi.Spec.Upgrade.Abort && u != nil && u.TargetRevision == target && u.FromRevision != "" {
		return result{}, r.abort(ctx, s)
	}
	if err := r.activate(ctx, s, target); err != nil {
		return result{}, err
	}
	after, err := r.finishRevisionUpgrade(ctx, s, revs, target)
	return result{requeueAfter: after}, err
}

// revisionRelease is the revision chart's release of target when no
// revision of that name exists yet: the shared charts move only once it
// passes the dry run too (Istio: base's CRDs after the new istiod's).
func (r *Reconciler) revisionRelease(ctx context.Context, s *scope, target string) ([]helm.Release, error) {
	if target == s.mi.Status.ActiveRevision {
		return nil, nil
	}
	var rv meshv1alpha1.MeshRevision
	if err := r.Get(ctx, client.ObjectKey{Name: target}, &rv); err == nil || !apierrors.IsNotFound(err) {
		return nil, client.IgnoreNotFound(err)
	}
	i := slices.IndexFunc(s.charts, s.isRevisionChart)
	if i < 0 {
		return nil, nil
	}
	ds, err := r.desiredReleases(ctx, s, s.charts[i:i+1], s.mi.Spec.Version, target)
	if err != nil {
		return nil, err
	}
	rel := ds[0].rel
	rel.Name = ds[0].chart.Name + "-" + target
	return []helm.Release{rel}, nil
}

// startRevisionUpgrade records an upgrade to target when the active
// revision differs.
func (r *Reconciler) startRevisionUpgrade(mi *meshv1alpha1.MeshInstall, target string) {
	active, u := mi.Status.ActiveRevision, mi.Status.Upgrade
	if active == "" || active == target || (u != nil && u.TargetRevision == target) {
		return
	}
	now := metav1.NewTime(r.Clock.Now())
	u = &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeWaitingForRevision, FromVersion: mi.Status.InstalledVersion,
		ToVersion: mi.Spec.Version, FromRevision: active, TargetRevision: target, StartTime: &now}
	mi.Status.Upgrade = u
	r.event(mi, "UpgradeStarted", "Upgrade", "upgrading %s → %s: installing revision %s beside %s", u.FromVersion, u.ToVersion, target, active)
}

// activate points the default tag at target, makes it the active revision
// and migrates the namespaces of an upgrade to it.
func (r *Reconciler) activate(ctx context.Context, s *scope, target string) error {
	mi := s.mi
	if err := r.moveTag(ctx, s, s.rev.DefaultTag(mi), target); err != nil {
		return err
	}
	mi.Status.ActiveRevision = target
	mi.Status.InstalledVersion = mi.Spec.Version
	u := mi.Status.Upgrade
	if u == nil || u.TargetRevision != target || u.Phase == meshv1alpha1.UpgradeCompleted || u.Phase == meshv1alpha1.UpgradeCleaningUp {
		return nil
	}
	t := upgrade.Target{FromRevision: u.FromRevision, ToRevision: target, PodRevision: target, Restart: restartWorkloads(mi)}
	nss, err := r.revisionNamespaces(ctx, s, t)
	if err != nil {
		return err
	}
	done, err := r.migrate(ctx, s, t, nss)
	if err != nil || !done {
		return err
	}
	u.Phase, u.CurrentBatch = meshv1alpha1.UpgradeCleaningUp, nil
	u.Message = fmt.Sprintf("%d namespaces run %s; removing revision %s once unused", u.TotalNamespaces, target, u.FromRevision)
	r.event(mi, "MigrationCompleted", "Migrate", "%d namespaces migrated to revision %s", u.TotalNamespaces, target)
	return nil
}

// finishRevisionUpgrade removes unused old revisions and completes an
// upgrade once its previous revision is gone. It returns when to look
// again.
func (r *Reconciler) finishRevisionUpgrade(ctx context.Context, s *scope, revs []meshv1alpha1.MeshRevision, target string) (time.Duration, error) {
	mi := s.mi
	remaining, after, err := r.cleanup(ctx, mi, revs, target)
	if err != nil {
		return 0, err
	}
	u := mi.Status.Upgrade
	if u != nil && u.Phase == meshv1alpha1.UpgradeCleaningUp {
		if slices.Contains(remaining, u.FromRevision) {
			return 0, outcome.Wait(meshv1alpha1.ProgressingReason, after, "waiting to remove revision %s: %s", u.FromRevision, u.Message)
		}
		u.Phase = meshv1alpha1.UpgradeCompleted
		u.Message = fmt.Sprintf("upgraded to %s (revision %s); revision %s removed", u.ToVersion, target, u.FromRevision)
		r.event(mi, "UpgradeCompleted", "Upgrade", "%s", u.Message)
	}
	return after, nil
}

// abort moves the default tag back to the previous revision and every
// namespace that moved, then stalls with UpgradeAborted.
func (r *Reconciler) abort(ctx context.Context, s *scope) error {
	mi := s.mi
	u := mi.Status.Upgrade
	if err := r.moveTag(ctx, s, s.rev.DefaultTag(mi), u.FromRevision); err != nil {
		return err
	}
	mi.Status.ActiveRevision, mi.Status.InstalledVersion = u.FromRevision, u.FromVersion
	if u.Phase != meshv1alpha1.UpgradeAborting {
		now := metav1.NewTime(r.Clock.Now())
		u.Phase, u.BatchStartTime = meshv1alpha1.UpgradeAborting, &now
		r.Events.Eventf(mi, nil, corev1.EventTypeWarning, "UpgradeAborting", "Abort", "spec.upgrade.abort: moving the default tag and every migrated namespace back to revision %s", u.FromRevision)
	}
	t := stamped(upgrade.Target{FromRevision: u.TargetRevision, ToRevision: u.FromRevision, PodRevision: u.FromRevision, Restart: restartWorkloads(mi)}, u.BatchStartTime)
	all, err := r.revisionNamespaces(ctx, s, t)
	if err != nil {
		return err
	}
	// Only namespaces the upgrade touched move back: those relabelled and
	// those whose pods run the new revision.
	var moved []upgrade.Namespace
	for _, n := range all {
		touched := n.Labels[s.rev.RevisionLabel()] == u.TargetRevision || n.PodRevisions[u.TargetRevision] > 0
		for _, w := range n.Workloads {
			touched = touched || w.DataPlane == t.DataPlane
		}
		if touched {
			moved = append(moved, n)
		}
	}
	u.CurrentBatch = nil
	if err := r.recordAndApply(ctx, s, t, moved); err != nil {
		return err
	}
	if gate := upgrade.CheckBatch(t, moved); !gate.Passed {
		u.Message = "moving back, waiting for: " + joinMax(gate.Waiting, 3)
		return outcome.Wait(meshv1alpha1.ProgressingReason, pollInterval, "aborting the upgrade: %s", u.Message)
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
func targetRevision(s *scope, revs []meshv1alpha1.MeshRevision) string {
	mi := s.mi
	for _, rv := range revs {
		if rv.Name == mi.Status.ActiveRevision && rv.Spec.Version == mi.Spec.Version {
			return rv.Name
		}
	}
	for _, rv := range revs {
		if rv.Spec.Version == mi.Spec.Version && ownership.IsOwnedBy(&rv, Kind, "", mi.Name) {
			return rv.Name
		}
	}
	if rev := s.rev.InstallRevision(mi); mi.Status.ActiveRevision == "" && rev != "" {
		return rev
	}
	return s.rev.RevisionName(mi.Spec.Version)
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
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ownership.Labels(Kind, "", mi.Name)},
		Spec:       meshv1alpha1.MeshRevisionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: mi.Name}, Version: mi.Spec.Version},
	}
	if err := r.Create(ctx, rv, client.FieldOwner(ownership.FieldManager)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, outcome.Stalled(meshv1alpha1.ConflictReason, "MeshRevision %s exists and belongs to another MeshInstall; choose another version or revision", name)
		}
		return nil, err
	}
	r.event(mi, "RevisionCreated", "Create", "created MeshRevision %s for %s", name, mi.Spec.Version)
	return rv, nil
}

func revisionReady(rv *meshv1alpha1.MeshRevision) bool {
	c := status.Get(&rv.Status.CommonStatus, meshv1alpha1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && rv.Status.ObservedGeneration == rv.Generation
}

// moveTag points a revision tag at revision through the mesh's EnsureTag
// (one server-side apply, none when it points there already). A tag
// webhook Meshplane did not create is a Conflict, unless spec.adopt is set.
func (r *Reconciler) moveTag(ctx context.Context, s *scope, tag, revision string) error {
	res, err := s.rev.EnsureTag(ctx, r.tagWriter(s.mi), tag, revision, s.ns)
	if err != nil {
		return err
	}
	if res.Wrote() {
		r.event(s.mi, "TagMoved", "Apply", "revision tag %s now points at revision %s", tag, revision)
	}
	return nil
}

// revisionNamespaces lists the namespaces a revision-based migration
// covers: those selecting the old or new revision explicitly and those
// following the default tag.
func (r *Reconciler) revisionNamespaces(ctx context.Context, s *scope, t upgrade.Target) ([]upgrade.Namespace, error) {
	tag := s.rev.DefaultTag(s.mi)
	return r.collectNamespaces(ctx, s, func(ns *corev1.Namespace) bool {
		return s.rev.InMigration(ns.Labels, tag, t.FromRevision, t.ToRevision)
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
	now := r.Clock.Now()
	for i := range revs {
		rv := &revs[i]
		if rv.Name == target || !ownership.IsOwnedBy(rv, Kind, "", mi.Name) {
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
		r.event(mi, "RevisionRemoved", "Delete", "removing MeshRevision %s: unused since %s", rv.Name, rv.Status.UnusedSince.Format(time.RFC3339))
		after = minPositive(after, 2*time.Second)
	}
	return remaining, after, nil
}

// summarizeRevisions records the revisions in status.
func summarizeRevisions(mi *meshv1alpha1.MeshInstall, revs []meshv1alpha1.MeshRevision, target *meshv1alpha1.MeshRevision) {
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
	slices.SortFunc(out, func(a, b meshv1alpha1.RevisionSummary) int { return strings.Compare(a.Name, b.Name) })
	if len(out) > 16 {
		out = out[:16]
	}
	mi.Status.Revisions = out
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

// tagWriter writes mi's revision tags and default validator; a default
// validator another owner holds is left as it is, with a Warning event
// naming the holder.
func (r *Reconciler) tagWriter(mi *meshv1alpha1.MeshInstall) mesh.TagWriter {
	return mesh.TagWriter{Reader: r.Client, Applier: r.applier(r.Client), Owner: apply.Owner{Object: mi, Kind: Kind}, Adopt: mi.Spec.Adopt != nil,
		Held: func(name, holder string) {
			r.Events.Eventf(mi, nil, corev1.EventTypeWarning, "DefaultValidatorHeld", "Apply",
				"%s is held by %s: it, not this install, validates %s objects without a revision label", name, holder, mi.Spec.Provider)
		}}
}
