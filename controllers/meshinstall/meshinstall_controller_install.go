package meshinstall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// desired is one Helm release Meshplane wants.
type desired struct {
	chart  mesh.Chart
	rel    helm.Release
	digest string
}

// scope is what the phases of one reconcile share.
type scope struct {
	mi *meshv1alpha1.MeshInstall
	// p is the mesh's installer.
	p mesh.Installer
	// rev is p's revision support; nil for meshes without revisions.
	rev mesh.Revisioner
	// ns is the control-plane namespace.
	ns     string
	charts []mesh.Chart
	// id is the mesh's identity material; nil when it has none.
	id *mesh.Identity
	// patcher writes mi's status; commit records it before an action that
	// depends on it.
	patcher *status.Patcher
}

// commit records mi's status under the optimistic lock before an action
// that must happen once per record (a batch's restarts): a reconcile that
// read a stale MeshInstall fails here with Conflict and acts on nothing.
func (s *scope) commit(ctx context.Context) error {
	if s.patcher == nil {
		return nil
	}
	return s.patcher.Commit(ctx, s.mi)
}

// install runs the phases: provider, namespace, identity, then the
// in-place or revision-based life cycle.
func (r *Reconciler) install(ctx context.Context, patcher *status.Patcher, mi *meshv1alpha1.MeshInstall) (result, error) {
	s, err := r.newScope(ctx, mi)
	if err != nil {
		return result{}, err
	}
	s.patcher = patcher
	var out result
	if err := r.waitForAdoption(ctx, mi); err != nil {
		return out, err
	}
	if s.revisionBased() {
		out, err = r.reconcileRevisionBased(ctx, s)
	} else {
		err = r.reconcileInPlace(ctx, s)
	}
	if err != nil {
		return out, err
	}
	// Waypoints run on the installed control plane's data plane.
	pending, err := r.reconcileWaypoints(ctx, mi, s.p)
	if pending && (out.requeueAfter == 0 || out.requeueAfter > waypointRecheck) {
		out.requeueAfter = waypointRecheck
	}
	return out, err
}

// newScope resolves the provider, its charts and namespace, and prepares
// the identity. The namespace is prepared later, by applyReleases, once
// every chart rendered.
func (r *Reconciler) newScope(ctx context.Context, mi *meshv1alpha1.MeshInstall) (*scope, error) {
	p, err := r.Registry.Installer(mi.Spec.Provider)
	if err != nil {
		return nil, err
	}
	s := &scope{mi: mi, p: p, ns: namespaceOf(mi, p), charts: p.Charts(mi)}
	s.rev, _ = p.(mesh.Revisioner)
	mi.Status.Namespace = s.ns
	if err := helm.UnknownComponents(mi, s.charts); err != nil {
		return nil, err
	}
	if s.id, err = r.identity(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

func namespaceOf(mi *meshv1alpha1.MeshInstall, p mesh.Installer) string {
	if mi.Spec.Namespace != "" {
		return mi.Spec.Namespace
	}
	return p.DefaultNamespace()
}

// revisionBased reports whether the install runs one MeshRevision per
// version: spec.upgrade.strategy RevisionBased on a mesh with revisions.
func (s *scope) revisionBased() bool {
	u := s.mi.Spec.Upgrade
	return s.rev != nil && u != nil && u.Strategy == meshv1alpha1.UpgradeRevisionBased
}

// isRevisionChart reports whether c is installed once per revision.
func (s *scope) isRevisionChart(c mesh.Chart) bool {
	return s.rev != nil && c.Name == s.rev.RevisionChart()
}

// reconcileInPlace installs or upgrades every chart in place, waits for the
// control plane, then restarts the data plane in batches after a version
// change.
func (r *Reconciler) reconcileInPlace(ctx context.Context, s *scope) error {
	mi := s.mi
	revision := ""
	if s.rev != nil {
		revision = s.rev.InstallRevision(mi)
	}
	upgrading := mi.Status.InstalledVersion != "" && mi.Status.InstalledVersion != mi.Spec.Version
	r.closeReverted(mi)
	if upgrading && (mi.Status.Upgrade == nil || mi.Status.Upgrade.ToVersion != mi.Spec.Version) {
		now := metav1.NewTime(r.Clock.Now())
		mi.Status.Upgrade = &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeInstalling,
			FromVersion: mi.Status.InstalledVersion, ToVersion: mi.Spec.Version, StartTime: &now}
	}
	rels, err := r.desiredReleases(ctx, s, s.charts, mi.Spec.Version, revision)
	if err != nil {
		return err
	}
	if err := r.applyReleases(ctx, s, rels); err != nil {
		return err
	}
	if err := r.checkHealth(ctx, s, rels); err != nil {
		return err
	}
	if err := r.ensureDefaultValidator(ctx, s, revision); err != nil {
		return err
	}
	mi.Status.InstalledVersion = mi.Spec.Version
	return r.upgradeDataPlane(ctx, s)
}

// ensureDefaultValidator has an in-place install's control plane validate
// the mesh's objects that name no revision (Istio: istiod-default-validator,
// which a RevisionBased install moves with its default tag). An adopted
// install keeps what its releases render. When another owner holds the
// cluster's one default validator, a Warning event names it and the
// install goes on: those objects are validated already.
func (r *Reconciler) ensureDefaultValidator(ctx context.Context, s *scope, revision string) error {
	if s.rev == nil || s.mi.Spec.Adopt != nil {
		return nil
	}
	w := r.tagWriter(s.mi)
	res, err := s.rev.EnsureDefaultValidator(ctx, w, revision, s.ns)
	if err == nil && res.Wrote() {
		r.event(s.mi, "DefaultValidator", "Apply", "revision %q now validates %s objects without a revision label", revision, s.mi.Spec.Provider)
	}
	return err
}

// closeReverted closes an in-place upgrade whose target spec.version no
// longer names: the version went back (or elsewhere) before the upgrade
// completed. A new target starts a new upgrade record.
func (r *Reconciler) closeReverted(mi *meshv1alpha1.MeshInstall) {
	u := mi.Status.Upgrade
	if u == nil || u.ToVersion == mi.Spec.Version || u.Phase == meshv1alpha1.UpgradeCompleted || u.Phase == meshv1alpha1.UpgradeFailed {
		return
	}
	u.Phase, u.CurrentBatch = meshv1alpha1.UpgradeCompleted, nil
	u.Message = fmt.Sprintf("upgrade to %s cancelled: spec.version is now %s", u.ToVersion, mi.Spec.Version)
	r.event(mi, "UpgradeCancelled", "Upgrade", "%s", u.Message)
}

// upgradeDataPlane restarts the data plane onto spec.version after an
// in-place control-plane upgrade, in batches.
func (r *Reconciler) upgradeDataPlane(ctx context.Context, s *scope) error {
	mi := s.mi
	u := mi.Status.Upgrade
	if u == nil || u.ToVersion != mi.Spec.Version || u.Phase == meshv1alpha1.UpgradeCompleted {
		return nil
	}
	if nd, ok := s.p.(mesh.NodeDataPlane); ok {
		u.Phase, u.Message = meshv1alpha1.UpgradeCompleted, nd.DataPlaneUpgraded()
		return nil
	}
	t := upgrade.Target{DataPlane: mi.Spec.Version, Restart: restartWorkloads(mi)}
	nss, err := r.meshNamespaces(ctx, s)
	if err != nil {
		return err
	}
	done, err := r.migrate(ctx, s, t, nss)
	if err != nil || !done {
		return err
	}
	u.Phase, u.CurrentBatch, u.Message = meshv1alpha1.UpgradeCompleted, nil, fmt.Sprintf("control plane and %d namespaces run %s", u.TotalNamespaces, mi.Spec.Version)
	r.event(mi, "UpgradeCompleted", "Upgrade", "%s upgraded in place to %s", mi.Spec.Provider, mi.Spec.Version)
	return nil
}

// desiredReleases composes the release of every chart.
func (r *Reconciler) desiredReleases(ctx context.Context, s *scope, charts []mesh.Chart, version, revision string) ([]desired, error) {
	mi := s.mi
	out := make([]desired, 0, len(charts))
	for _, c := range charts {
		ic := mesh.InstallContext{Namespace: s.ns, Version: version, Identity: s.id}
		if s.isRevisionChart(c) {
			ic.Revision = revision
		}
		vals, err := helm.Compose(s.p, mi, c, ic, nil)
		if err != nil {
			return nil, err
		}
		src, err := helm.SourceFor(ctx, r.APIReader, mi, c, r.OperatorNamespace)
		if err != nil {
			return nil, err
		}
		name, ns := releaseName(mi, c), c.ReleaseNamespace(s.ns)
		if vals, err = r.adoptedValues(ctx, mi, name, ns, vals); err != nil {
			return nil, err
		}
		rel := helm.Release{Name: name, Namespace: ns, Chart: c.Name, Version: helm.ChartVersion(s.p, mi, version), Source: src, Values: vals,
			TakeOwnership: adoptsCLI(mi) && findRelease(mi.Status.Releases, name) == nil}
		out = append(out, desired{chart: c, rel: rel, digest: helm.Digest(rel)})
	}
	return out, nil
}

// releaseName is the release of chart c: spec.adopt's name for it, or the
// mesh's.
func releaseName(mi *meshv1alpha1.MeshInstall, c mesh.Chart) string {
	if a := mi.Spec.Adopt; a != nil && a.ReleaseNames[c.Name] != "" {
		return a.ReleaseNames[c.Name]
	}
	return c.ReleaseName
}

// adoptedValues layers Meshplane's values over those of a release adopted
// from Helm: an adopted release keeps its own values.
func (r *Reconciler) adoptedValues(ctx context.Context, mi *meshv1alpha1.MeshInstall, name, ns string, vals map[string]any) (map[string]any, error) {
	if mi.Spec.Adopt == nil || mi.Spec.Adopt.Source != meshv1alpha1.AdoptHelmRelease {
		return vals, nil
	}
	info, err := r.Helm.Get(ctx, name, ns)
	if err != nil && !errors.Is(err, helm.ErrReleaseNotFound) {
		return nil, err
	}
	if info != nil {
		vals = helm.Merge(info.Values, vals)
	}
	return vals, nil
}

// applyReleases prepares the control-plane namespace and installs or
// upgrades the releases whose digest changed, as one unit. Every changed
// chart is rendered first, so a chart that cannot be fetched or rendered
// stops the reconcile before anything is written, the namespace included;
// then every rendered object of every changed chart is dry-run against the
// API server (helm.Releaser Validate), so a value the server refuses moves
// no release. Releases move in the mesh's chart order (CRDs first); one
// that fails after earlier ones moved rolls those back (undo).
//
// also are releases of the same change that another controller installs
// (a RevisionBased upgrade's new revision): validated with the changed
// charts, so that none moves unless they pass too.
func (r *Reconciler) applyReleases(ctx context.Context, s *scope, rels []desired, also ...helm.Release) error {
	mi := s.mi
	var changed []desired
	for _, d := range rels {
		if st := findRelease(mi.Status.Releases, d.rel.Name); st == nil || st.ValuesDigest != d.digest || st.Status != "deployed" {
			changed = append(changed, d)
		}
	}
	changed, deferred, err := r.renderChanged(ctx, changed)
	if err != nil {
		return err
	}
	if err := r.ensureNamespace(ctx, s); err != nil {
		return err
	}
	if err := r.pruneExtensions(ctx, s); err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	change := make([]helm.Release, 0, len(changed)+len(also))
	for _, d := range changed {
		change = append(change, d.rel)
	}
	change = append(change, also...)
	if err := r.Helm.Validate(ctx, change); err != nil {
		return err
	}
	var moved []desired
	for _, d := range changed {
		res, err := r.ensureRelease(ctx, mi, d)
		if err != nil {
			return r.undo(ctx, s, moved, d, err)
		}
		if res.Action == helm.ActionUpgraded {
			moved = append(moved, d)
		}
		if err := r.recordRelease(ctx, mi, d, d.digest); err != nil {
			return err
		}
		if res.Action != helm.ActionNone {
			r.event(mi, string(res.Action), "Helm", "Helm release %s/%s: %s chart %s %s (revision %d)",
				d.rel.Namespace, d.rel.Name, res.Action, d.rel.Chart, d.rel.Version, res.Revision)
		}
	}
	if deferred != nil {
		// Not a failure: the CRDs just installed are served within
		// seconds. A fixed recheck, not the error backoff, which after an
		// install's earlier retries could leave the chart waiting long
		// after its kinds are served.
		return outcome.Wait(meshv1alpha1.ProgressingReason, 2*time.Second, "%s; the charts after it wait until its kinds are served", deferred)
	}
	status.Set(&mi.Status.CommonStatus, mi.Generation, meshv1alpha1.InstalledCondition, metav1.ConditionTrue,
		meshv1alpha1.SucceededReason, fmt.Sprintf("%d Helm releases deployed", len(mi.Status.Releases)))
	return nil
}

// renderChanged renders every changed chart. A chart that uses a kind the
// server does not serve yet, after a CRDs-only chart of the same change
// (the multicluster extension listed before Linkerd's CRDs were
// installed), is deferred with the charts after it: the charts before it
// move now, and its render error is returned as deferred so the next
// reconcile installs it once its CRDs are served.
func (r *Reconciler) renderChanged(ctx context.Context, changed []desired) (move []desired, deferred, err error) {
	crds := false
	for i, d := range changed {
		if _, err := r.Helm.Render(ctx, d.rel); err != nil {
			if crds && helm.IsKindNotServed(err) {
				return changed[:i], err, nil
			}
			return nil, nil, err
		}
		crds = crds || d.chart.CRDsOnly
	}
	return changed, nil, nil
}

// recordRelease records release d's deployed revision in status, with
// digest (empty: the next reconcile applies it again).
func (r *Reconciler) recordRelease(ctx context.Context, mi *meshv1alpha1.MeshInstall, d desired, digest string) error {
	// The release just moved: the cache may not show its new Secret yet.
	r.infos.forget(types.NamespacedName{Namespace: d.rel.Namespace, Name: d.rel.Name})
	info, err := r.Helm.Get(ctx, d.rel.Name, d.rel.Namespace)
	if err != nil && !errors.Is(err, helm.ErrReleaseNotFound) {
		return err
	}
	setRelease(mi, helm.ReleaseStatus(d.rel, info, digest))
	return nil
}

// undo rolls back, last first, the releases of this change that moved
// before failed failed with cause, so the mesh never runs a mix of the old
// and the new change. The error keeps cause's outcome and says what was
// rolled back.
func (r *Reconciler) undo(ctx context.Context, s *scope, moved []desired, failed desired, cause error) error {
	if len(moved) == 0 || ctx.Err() != nil {
		return cause
	}
	var back []string
	for i := len(moved) - 1; i >= 0; i-- {
		d := moved[i]
		if err := r.Helm.Rollback(ctx, d.rel.Name, d.rel.Namespace, false, 0); err != nil {
			return fmt.Errorf("release %s/%s failed (%v) and rolling back release %s/%s, which this change had upgraded, failed too: %w",
				failed.rel.Namespace, failed.rel.Name, cause, d.rel.Namespace, d.rel.Name, err)
		}
		if err := r.recordRelease(ctx, s.mi, d, ""); err != nil {
			return err
		}
		rev := "its previous revision"
		if st := findRelease(s.mi.Status.Releases, d.rel.Name); st != nil {
			rev = fmt.Sprintf("revision %d", st.Revision)
		}
		back = append(back, fmt.Sprintf("%s/%s to %s", d.rel.Namespace, d.rel.Name, rev))
		r.event(s.mi, string(helm.ActionRolledBack), "Helm", "Helm release %s/%s rolled back to %s: release %s/%s of the same change failed",
			d.rel.Namespace, d.rel.Name, rev, failed.rel.Namespace, failed.rel.Name)
	}
	note := fmt.Sprintf("; rolled back %s so the mesh runs the previous change as a whole", joinMax(back, 5))
	if t, ok := outcome.AsTerminal(cause); ok {
		return outcome.Stalled(t.StalledReason(), "%s%s", cause.Error(), note)
	}
	return fmt.Errorf("%w%s", cause, note)
}

// ensureRelease installs, upgrades or (on first sight, with spec.adopt)
// adopts one release.
func (r *Reconciler) ensureRelease(ctx context.Context, mi *meshv1alpha1.MeshInstall, d desired) (helm.Result, error) {
	if mi.Spec.Adopt != nil && findRelease(mi.Status.Releases, d.rel.Name) == nil {
		_, err := r.Helm.Get(ctx, d.rel.Name, d.rel.Namespace)
		switch {
		case err == nil:
			if adoptsCLI(mi) {
				break
			}
			res, err := r.Helm.Adopt(ctx, d.rel, false, 0)
			if err != nil {
				return res, err
			}
			recordAdopted(mi, "HelmRelease/"+d.rel.Namespace+"/"+d.rel.Name, r.Clock.Now())
			return res, nil
		case !errors.Is(err, helm.ErrReleaseNotFound):
			return helm.Result{}, err
		case adoptsCLI(mi):
			// No release: the objects the mesh's CLI applied are taken
			// over in place by a release of the same chart.
			res, err := r.Helm.Adopt(ctx, d.rel, false, 0)
			if err != nil {
				return res, err
			}
			for _, o := range res.Objects {
				if mi.Status.Adopted != nil && len(mi.Status.Adopted.Objects) >= 64 {
					break
				}
				recordAdopted(mi, o.Kind+"/"+o.Namespace+"/"+o.Name, r.Clock.Now())
			}
			return res, nil
		}
	}
	return r.Helm.Ensure(ctx, d.rel, false, 0)
}

// adoptsCLI reports whether mi takes over a mesh its CLI installed.
func adoptsCLI(mi *meshv1alpha1.MeshInstall) bool {
	return mi.Spec.Adopt != nil && mi.Spec.Adopt.Source == meshv1alpha1.AdoptCLI
}

func recordAdopted(mi *meshv1alpha1.MeshInstall, obj string, now time.Time) {
	if mi.Status.Adopted == nil {
		t := metav1.NewTime(now)
		mi.Status.Adopted = &meshv1alpha1.AdoptedStatus{Source: mi.Spec.Adopt.Source, Time: &t}
	}
	if !slices.Contains(mi.Status.Adopted.Objects, obj) {
		mi.Status.Adopted.Objects = append(mi.Status.Adopted.Objects, obj)
	}
}

func findRelease(rs []meshv1alpha1.HelmReleaseStatus, name string) *meshv1alpha1.HelmReleaseStatus {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}

func setRelease(mi *meshv1alpha1.MeshInstall, s meshv1alpha1.HelmReleaseStatus) {
	if cur := findRelease(mi.Status.Releases, s.Name); cur != nil {
		*cur = s
		return
	}
	mi.Status.Releases = append(mi.Status.Releases, s)
}

// checkHealth reads every control-plane workload of the releases and the
// mesh's CRDs; revision lists the workloads of the install's current
// MeshRevision (RevisionBased: its istiod), which count as the install's
// own. It returns a wait error until all are ready.
func (r *Reconciler) checkHealth(ctx context.Context, s *scope, rels []desired, revision ...meshv1alpha1.ComponentStatus) error {
	mi := s.mi
	var refs []helm.ObjectRef
	for _, d := range rels {
		info, err := r.release(ctx, d.rel.Name, d.rel.Namespace)
		if err != nil {
			if errors.Is(err, helm.ErrReleaseNotFound) {
				return outcome.Wait(meshv1alpha1.ProgressingReason, 2*time.Second, "Helm release %s/%s is not deployed yet", d.rel.Namespace, d.rel.Name)
			}
			return err
		}
		refs = append(refs, info.Objects...)
	}
	comps, notReady, err := r.components(ctx, refs)
	if err != nil {
		return err
	}
	for _, cs := range revision {
		if !cs.Ready {
			notReady = append(notReady, fmt.Sprintf("%s %s/%s (%s)", cs.Kind, cs.Namespace, cs.Name, cs.Message))
		}
		if len(comps) < 64 {
			comps = append(comps, cs)
		}
	}
	mi.Status.Components = comps
	st, gen := &mi.Status.CommonStatus, mi.Generation
	crdErr := r.crdsEstablished(ctx, s.p)
	if crdErr != nil {
		status.Set(st, gen, meshv1alpha1.CRDsEstablishedCondition, metav1.ConditionFalse, meshv1alpha1.ProgressingReason, crdErr.Error())
	} else {
		status.Set(st, gen, meshv1alpha1.CRDsEstablishedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "every CRD of the mesh is Established")
	}
	if len(notReady) > 0 {
		msg := "not ready: " + joinMax(notReady, 5)
		status.Set(st, gen, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason, msg)
		return outcome.Wait(meshv1alpha1.ComponentsNotReadyReason, 5*time.Second, "control plane %s", msg)
	}
	status.Set(st, gen, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
		fmt.Sprintf("%d control-plane workloads are Available", len(comps)))
	if crdErr != nil {
		return outcome.Wait(meshv1alpha1.ProgressingReason, 5*time.Second, "%s", crdErr.Error())
	}
	return nil
}

// components reads the Deployments, DaemonSets and StatefulSets among refs.
func (r *Reconciler) components(ctx context.Context, refs []helm.ObjectRef) ([]meshv1alpha1.ComponentStatus, []string, error) {
	var comps []meshv1alpha1.ComponentStatus
	var notReady []string
	for _, ref := range refs {
		var obj client.Object
		switch {
		case ref.Group == "apps" && ref.Kind == "Deployment":
			obj = &appsv1.Deployment{}
		case ref.Group == "apps" && ref.Kind == "DaemonSet":
			obj = &appsv1.DaemonSet{}
		case ref.Group == "apps" && ref.Kind == "StatefulSet":
			obj = &appsv1.StatefulSet{}
		default:
			continue
		}
		cs := meshv1alpha1.ComponentStatus{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
		if err := r.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, obj); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return nil, nil, err
			}
			cs.Message = "not found"
		} else {
			cs.Ready, cs.Message = upgrade.WorkloadReady(obj)
		}
		if !cs.Ready {
			notReady = append(notReady, fmt.Sprintf("%s %s/%s (%s)", ref.Kind, ref.Namespace, ref.Name, cs.Message))
		}
		if len(comps) < 64 {
			comps = append(comps, cs)
		}
	}
	return comps, notReady, nil
}

// crdsEstablished checks that the mesh's main API group is served and that
// every CRD of its groups is Established.
func (r *Reconciler) crdsEstablished(ctx context.Context, p mesh.Installer) error {
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := r.List(ctx, &list); err != nil {
		return err
	}
	groups := p.CRDGroups()
	var missing []string
	found := false
	for _, crd := range list.Items {
		if !slices.Contains(groups, crd.Spec.Group) {
			continue
		}
		if crd.Spec.Group == groups[0] {
			found = true
		}
		est := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				est = true
			}
		}
		if !est {
			missing = append(missing, crd.Name)
		}
	}
	if !found {
		return fmt.Errorf("no CRD of API group %s is installed yet", groups[0])
	}
	if len(missing) > 0 {
		return fmt.Errorf("CRDs not Established yet: %s", joinMax(missing, 5))
	}
	return nil
}

// meshNamespaces lists the namespaces whose data plane an in-place upgrade
// restarts: sidecar members of the mesh (ambient pods have no proxy to
// restart) that select the install's revision, minus the control plane's
// own, filtered by the rollout's namespaceSelector.
func (r *Reconciler) meshNamespaces(ctx context.Context, s *scope) ([]upgrade.Namespace, error) {
	return r.collectNamespaces(ctx, s, func(ns *corev1.Namespace) bool {
		m := s.p.NamespaceMembership(ns)
		if m.Level != mesh.ExplicitMember || m.Profile == meshv1alpha1.ProfileAmbient {
			return false
		}
		return s.rev == nil || s.rev.SelectsRevision(m, s.rev.InstallRevision(s.mi))
	})
}

func restartWorkloads(mi *meshv1alpha1.MeshInstall) bool {
	if mi.Spec.Upgrade == nil || mi.Spec.Upgrade.Rollout == nil || mi.Spec.Upgrade.Rollout.RestartWorkloads == nil {
		return true
	}
	return *mi.Spec.Upgrade.Rollout.RestartWorkloads
}

func joinMax(items []string, n int) string {
	s := ""
	for i, it := range items {
		if i == n {
			return s + fmt.Sprintf(" and %d more", len(items)-n)
		}
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}
