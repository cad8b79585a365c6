package helm

import (
	"context"

	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-logr/logr"
	"helm.sh/helm/v4/pkg/action"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// DigestLabel is the release label holding the digest of the chart, values
// and labels a release was deployed with.
const DigestLabel = "meshplane.io/release-digest"

// maxHistory bounds the revisions Helm keeps per release.
const maxHistory = 10

// Render renders the release with the server's capabilities without writing
// anything. The manifest is what Helm stores as the release manifest:
// templates, post-rendered, without the chart's crds/ directory. Template
// and values.schema.json failures are terminal (RenderFailed).
func (e *Engine) Render(ctx context.Context, rel Release) (string, error) {
	ch, err := e.Load(ctx, rel.Chart, rel.Version, rel.Source)
	if err != nil {
		return "", err
	}
	cfg, err := e.actionConfig(rel.Namespace)
	if err != nil {
		return "", err
	}
	last, err := lastRelease(cfg, rel.Name)
	if err != nil {
		return "", err
	}
	return e.render(ctx, cfg, ch, rel, rel.Values, last != nil && last.Info.Status != rcommon.StatusUninstalled, rel.TakeOwnership)
}

// render renders ch with vals as release rel in a dry run against the API
// server (lookups and capabilities are real; nothing is written). For a new
// release the dry run also refuses objects that exist and belong to no or
// another release (terminal, reason Conflict).
//
// The server dry run writes nothing to cfg's storage; it leaves the server's
// capabilities in cfg, so the install or upgrade that follows with the same
// cfg does not read them again.
func (e *Engine) render(ctx context.Context, cfg *action.Configuration, ch *chartv2.Chart, rel Release, vals map[string]any, isUpgrade, takeOwnership bool) (string, error) {
	// Capabilities first: failures to reach the server are transient, and
	// everything Install reports after this is about the chart.
	caps, err := capabilities(cfg)
	if err != nil {
		return "", fmt.Errorf("reading the API server's capabilities: %w", err)
	}
	cfg.Capabilities = caps
	inst := action.NewInstall(cfg)
	inst.ReleaseName = rel.Name
	inst.Namespace = rel.Namespace
	inst.DryRunStrategy = action.DryRunServer
	inst.IsUpgrade = isUpgrade
	inst.TakeOwnership = takeOwnership
	inst.Replace = true
	inst.PostRenderer = keepCRDs{}
	inst.Labels = rel.Labels
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r, err := inst.RunWithContext(ctx, chartCopy(ch), copyValues(vals))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if msg := err.Error(); strings.Contains(msg, "resource mapping not found") || strings.Contains(msg, "no matches for kind") {
			// The chart uses a kind the server does not serve (yet): the CRDs
			// may be on their way (installed by another chart), so retry.
			return "", kindNotServed{fmt.Errorf("chart %s version %s uses a kind the API server does not serve (install its CRDs first): %w", ch.Metadata.Name, ch.Metadata.Version, err)}
		}
		if strings.Contains(err.Error(), "unable to continue with install") {
			return "", outcome.Stalled(meshv1alpha1.ConflictReason, "release %s/%s (chart %s %s) cannot be installed: %v; remove or adopt the existing objects", rel.Namespace, rel.Name, ch.Metadata.Name, ch.Metadata.Version, err)
		}
		return "", outcome.Stalled(meshv1alpha1.RenderFailedReason, "chart %s version %s does not render for release %s/%s: %v; fix the values", ch.Metadata.Name, ch.Metadata.Version, rel.Namespace, rel.Name, err)
	}
	out, err := releaserToV1(r)
	if err != nil {
		return "", err
	}
	return out.Manifest, nil
}

// chartCopy returns a copy of ch that Helm may mutate (dependency processing
// prunes disabled subcharts).
func chartCopy(ch *chartv2.Chart) *chartv2.Chart {
	c := *ch
	if ch.Metadata != nil {
		md := *ch.Metadata
		md.Dependencies = nil
		for _, d := range ch.Metadata.Dependencies {
			dc := *d
			md.Dependencies = append(md.Dependencies, &dc)
		}
		c.Metadata = &md
	}
	deps := ch.Dependencies()
	c.SetDependencies() // detach from the original slice
	for _, d := range deps {
		c.AddDependency(chartCopy(d))
	}
	return &c
}

func copyValues(v map[string]any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	return loader.MergeMaps(map[string]any{}, v)
}

// Ensure installs or upgrades rel and returns what it did. Unchanged chart,
// values and labels give Action None without any write. With wait it waits
// (kstatus) for the resources up to timeout; a failed upgrade is rolled back
// and a failed first install is uninstalled (terminal, InstallFailed). A
// release stuck in pending-install, pending-upgrade or pending-rollback is
// marked failed and upgraded again. Render errors happen before any write.
func (e *Engine) Ensure(ctx context.Context, rel Release, wait bool, timeout time.Duration) (Result, error) {
	defer e.lock(rel.Name, rel.Namespace)()
	ch, err := e.Load(ctx, rel.Chart, rel.Version, rel.Source)
	if err != nil {
		return Result{}, err
	}
	return e.ensure(ctx, ch, rel, rel.Values, wait, timeout, false)
}

// ensureOp is one Ensure or Adopt call: the release, its chart and values,
// and what the release history says.
type ensureOp struct {
	rel       Release
	ch        *chartv2.Chart
	vals      map[string]any
	adopt     bool
	digest    string
	cfg       *action.Configuration
	last      *releasev1.Release
	recovered bool
	exists    bool
	deployed  bool
	labels    map[string]string
	strategy  kube.WaitStrategy
	// manifest is the rendered manifest of the wanted release.
	manifest string
	timeout  time.Duration
	log      logr.Logger
}

func (e *Engine) ensure(ctx context.Context, ch *chartv2.Chart, rel Release, vals map[string]any, wait bool, timeout time.Duration, adopt bool) (Result, error) {
	op := &ensureOp{rel: rel, ch: ch, vals: vals, adopt: adopt, digest: releaseDigest(ch, vals, rel.Labels),
		log: e.log.WithValues("release", rel.Namespace+"/"+rel.Name, "chart", ch.Metadata.Name, "version", ch.Metadata.Version)}
	if err := e.readHistory(op); err != nil {
		return Result{}, err
	}
	if op.deployed && (op.last.Labels[DigestLabel] == op.digest || e.knownEqual(rel, op.digest, op.last.Version)) {
		return e.result(ActionNone, op.last, ch), nil
	}
	unchanged, err := e.renderUnchanged(ctx, op)
	if err != nil {
		return Result{}, err
	}
	if unchanged {
		return e.result(ActionNone, op.last, ch), nil
	}
	if err := e.dryRunManifest(ctx, op.ch, op.rel, op.manifest, nil); err != nil {
		return Result{}, err
	}
	op.labels = map[string]string{}
	maps.Copy(op.labels, rel.Labels)
	op.labels[DigestLabel] = op.digest
	op.timeout = e.waitTimeout(timeout)
	op.strategy = kube.HookOnlyStrategy
	if wait {
		op.strategy = kube.StatusWatcherStrategy
	}
	if !op.exists {
		return e.install(ctx, op)
	}
	return e.upgrade(ctx, op)
}

// readHistory reads the release's last revision and marks one left pending
// by an interrupted operation failed.
func (e *Engine) readHistory(op *ensureOp) error {
	cfg, err := e.actionConfig(op.rel.Namespace)
	if err != nil {
		return err
	}
	op.cfg = cfg
	last, err := lastRelease(cfg, op.rel.Name)
	if err != nil {
		return err
	}
	op.last = last
	if last != nil && last.Info.Status.IsPending() {
		op.log.Info("recovering release left pending by an interrupted operation", "status", last.Info.Status, "revision", last.Version)
		last.SetStatus(rcommon.StatusFailed, fmt.Sprintf("marked failed by Meshplane: left %s by an interrupted operation", last.Info.Status))
		if err := cfg.Releases.Update(last); err != nil {
			return fmt.Errorf("marking pending release %s/%s revision %d failed: %w", op.rel.Namespace, op.rel.Name, last.Version, err)
		}
		op.recovered = true
	}
	op.exists = last != nil && last.Info.Status != rcommon.StatusUninstalled
	op.deployed = op.exists && !op.recovered && last.Info.Status == rcommon.StatusDeployed
	return nil
}

// renderUnchanged renders the release (render errors stop it before any
// write) and reports whether the deployed release already has the same
// manifest of the same chart.
func (e *Engine) renderUnchanged(ctx context.Context, op *ensureOp) (bool, error) {
	manifest, err := e.render(ctx, op.cfg, op.ch, op.rel, op.vals, op.exists, op.adopt)
	if err != nil {
		return false, err
	}
	op.manifest = manifest
	if len(op.ch.CRDObjects()) > 0 {
		// Install creates the crds/ CRDs before rendering: let it read
		// the capabilities afresh, with them.
		op.cfg.Capabilities = nil
	}
	if op.deployed && sameChart(op.last, op.ch) && manifestsEqual(manifest, op.last.Manifest) && labelsIncluded(op.rel.Labels, op.last.Labels) {
		op.log.V(1).Info("values changed but the rendered manifest did not: no upgrade")
		e.rememberEqual(op.rel, op.digest, op.last.Version)
		return true, nil
	}
	return false, nil
}

// install runs a first install (or a takeover with adopt).
func (e *Engine) install(ctx context.Context, op *ensureOp) (Result, error) {
	rel := op.rel
	inst := action.NewInstall(op.cfg)
	inst.ReleaseName = rel.Name
	inst.Namespace = rel.Namespace
	// Only for a missing namespace: Helm's CreateNamespace server-side
	// applies a "name" label to an existing one, a foreign write the
	// MeshInstall controller could not record.
	inst.CreateNamespace = !namespaceExists(ctx, op.cfg, rel.Namespace)
	inst.Replace = true
	inst.Labels = op.labels
	inst.PostRenderer = keepCRDs{}
	inst.Timeout = op.timeout
	inst.WaitStrategy = op.strategy
	inst.ServerSideApply = true
	inst.ForceConflicts = true
	inst.TakeOwnership = op.adopt
	inst.Description = "Installed by Meshplane"
	op.log.Info("installing release")
	r, err := inst.RunWithContext(ctx, chartCopy(op.ch), copyValues(op.vals))
	if err != nil && ctx.Err() != nil {
		// Helm goes on in the background; the next call recovers
		// whatever state it leaves.
		return Result{}, fmt.Errorf("installing release %s/%s interrupted: %w", rel.Namespace, rel.Name, err)
	}
	if err != nil {
		return e.failedInstall(ctx, op.cfg, rel, op.ch, op.strategy, op.timeout, err)
	}
	out, err := releaserToV1(r)
	if err != nil {
		return Result{}, err
	}
	act := ActionInstalled
	if op.adopt {
		act = ActionAdopted
	}
	return e.result(act, out, op.ch), nil
}

// upgrade upgrades an existing release.
func (e *Engine) upgrade(ctx context.Context, op *ensureOp) (Result, error) {
	rel := op.rel
	up := action.NewUpgrade(op.cfg)
	up.Namespace = rel.Namespace
	up.ResetValues = true
	up.Labels = op.labels
	up.PostRenderer = keepCRDs{}
	up.Timeout = op.timeout
	up.WaitStrategy = op.strategy
	up.MaxHistory = maxHistory
	// Keep the apply method the release used (Helm 3 releases used
	// client-side apply); forcing conflicts needs server-side apply.
	up.ServerSideApply = "auto"
	up.ForceConflicts = op.last.ApplyMethod == "ssa"
	up.Description = "Upgraded by Meshplane"
	op.log.Info("upgrading release", "from", op.last.Version, "recovered", op.recovered)
	r, err := up.RunWithContext(ctx, rel.Name, chartCopy(op.ch), copyValues(op.vals))
	if err != nil && ctx.Err() != nil {
		return Result{}, fmt.Errorf("upgrading release %s/%s interrupted: %w", rel.Namespace, rel.Name, err)
	}
	if err != nil {
		return e.failedUpgrade(ctx, op.cfg, rel, op.ch, op.strategy, op.timeout, err)
	}
	out, err := releaserToV1(r)
	if err != nil {
		return Result{}, err
	}
	return e.result(ActionUpgraded, out, op.ch), nil
}

// failedInstall removes what a failed first install left behind.
func (e *Engine) failedInstall(ctx context.Context, cfg *action.Configuration, rel Release, ch *chartv2.Chart, strategy kube.WaitStrategy, timeout time.Duration, cause error) (Result, error) {
	e.log.Info("install failed; uninstalling what it created", "release", rel.Namespace+"/"+rel.Name, "error", cause.Error())
	if h, _ := cfg.Releases.History(rel.Name); len(h) == 0 {
		// Nothing was recorded, so nothing was created.
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, outcome.Stalled(meshv1alpha1.InstallFailedReason, "installing release %s/%s (chart %s %s) failed before anything was created: %v", rel.Namespace, rel.Name, ch.Metadata.Name, ch.Metadata.Version, cause)
	}
	// Cleaning up does not wait: the outcome is the same, and waiting
	// again for what just failed would double the time.
	if err := e.uninstall(cfg, rel.Name, kube.HookOnlyStrategy, timeout); err != nil {
		return Result{}, fmt.Errorf("installing release %s/%s failed (%v), and uninstalling it failed too: %w", rel.Namespace, rel.Name, cause, err)
	}
	return Result{}, outcome.Stalled(meshv1alpha1.InstallFailedReason, "installing release %s/%s (chart %s %s) failed: %v; the partial installation was uninstalled (CRDs kept)", rel.Namespace, rel.Name, ch.Metadata.Name, ch.Metadata.Version, cause)
}

// failedUpgrade rolls a failed upgrade back to the last deployed revision, or
// uninstalls a release that never deployed.
func (e *Engine) failedUpgrade(ctx context.Context, cfg *action.Configuration, rel Release, ch *chartv2.Chart, strategy kube.WaitStrategy, timeout time.Duration, cause error) (Result, error) {
	log := e.log.WithValues("release", rel.Namespace+"/"+rel.Name)
	prev, err := deployedRelease(cfg, rel.Name)
	if err != nil {
		return Result{}, fmt.Errorf("upgrading release %s/%s failed (%v); reading its history failed: %w", rel.Namespace, rel.Name, cause, err)
	}
	if prev == nil {
		log.Info("upgrade of a release that never deployed failed; uninstalling it", "error", cause.Error())
		if err := e.uninstall(cfg, rel.Name, kube.HookOnlyStrategy, timeout); err != nil {
			return Result{}, fmt.Errorf("upgrading release %s/%s failed (%v), and uninstalling it failed too: %w", rel.Namespace, rel.Name, cause, err)
		}
		return Result{}, outcome.Stalled(meshv1alpha1.InstallFailedReason, "installing release %s/%s (chart %s %s) failed: %v; the partial installation was uninstalled (CRDs kept)", rel.Namespace, rel.Name, ch.Metadata.Name, ch.Metadata.Version, cause)
	}
	log.Info("upgrade failed; rolling back", "to", prev.Version, "error", cause.Error())
	// The rollback does not wait: the previous revision's health is the
	// caller's to watch, and a wait here would double the time.
	if err := e.rollbackTo(cfg, rel.Name, prev, kube.HookOnlyStrategy, timeout); err != nil {
		return Result{}, fmt.Errorf("upgrading release %s/%s to chart %s %s failed (%v), and rolling back to revision %d failed too: %w", rel.Namespace, rel.Name, ch.Metadata.Name, ch.Metadata.Version, cause, prev.Version, err)
	}
	res := Result{Action: ActionRolledBack}
	if cur, err := deployedRelease(cfg, rel.Name); err == nil && cur != nil {
		res = e.result(ActionRolledBack, cur, cur.Chart)
	}
	return res, outcome.Stalled(meshv1alpha1.InstallFailedReason, "upgrading release %s/%s to chart %s %s failed: %v; rolled back to revision %d (chart %s)", rel.Namespace, rel.Name, ch.Metadata.Name, ch.Metadata.Version, cause, prev.Version, chartVersion(prev))
}

func (e *Engine) rollbackTo(cfg *action.Configuration, name string, target *releasev1.Release, strategy kube.WaitStrategy, timeout time.Duration) error {
	rb := action.NewRollback(cfg)
	rb.Version = target.Version
	rb.WaitStrategy = strategy
	rb.Timeout = timeout
	rb.MaxHistory = maxHistory
	rb.ServerSideApply = "auto"
	rb.ForceConflicts = target.ApplyMethod == "ssa"
	rb.Description = "Rolled back by Meshplane"
	return rb.Run(name)
}

// Adopt takes over an existing release of the same name without
// reinstalling: if the deployed chart version and rel's values merged over
// the release's own values render identically, it changes nothing (Action
// Adopted, revision unchanged); else it upgrades with the merged values
// (Action Upgraded). Without a release, it installs with Helm's
// take-ownership, so objects the mesh's own CLI created are adopted in place
// (Action Adopted).
func (e *Engine) Adopt(ctx context.Context, rel Release, wait bool, timeout time.Duration) (Result, error) {
	defer e.lock(rel.Name, rel.Namespace)()
	ch, err := e.Load(ctx, rel.Chart, rel.Version, rel.Source)
	if err != nil {
		return Result{}, err
	}
	cfg, err := e.actionConfig(rel.Namespace)
	if err != nil {
		return Result{}, err
	}
	cur, err := deployedRelease(cfg, rel.Name)
	if err != nil {
		return Result{}, err
	}
	if cur == nil {
		return e.ensure(ctx, ch, rel, rel.Values, wait, timeout, true)
	}
	vals := loader.MergeMaps(copyValues(cur.Config), copyValues(rel.Values))
	if sameChart(cur, ch) {
		manifest, err := e.render(ctx, cfg, ch, rel, vals, true, false)
		if err != nil {
			return Result{}, err
		}
		if manifestsEqual(manifest, cur.Manifest) {
			e.log.Info("adopted release without changes", "release", rel.Namespace+"/"+rel.Name, "revision", cur.Version)
			return e.result(ActionAdopted, cur, ch), nil
		}
	}
	return e.ensure(ctx, ch, rel, vals, wait, timeout, false)
}

// Get returns the deployed release; ErrReleaseNotFound (errors.Is) when
// there is none.
func (e *Engine) Get(ctx context.Context, name, namespace string) (*ReleaseInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := e.actionConfig(namespace)
	if err != nil {
		return nil, err
	}
	r, err := deployedRelease(cfg, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("release %s/%s: %w", namespace, name, ErrReleaseNotFound)
	}
	info := &ReleaseInfo{
		Name:      r.Name,
		Namespace: r.Namespace,
		Status:    string(r.Info.Status),
		Revision:  r.Version,
		Values:    r.Config,
		Manifest:  r.Manifest,
		Labels:    r.Labels,
		Objects:   e.objectsOf(r.Manifest, r.Namespace, r.Chart),
	}
	if r.Chart != nil && r.Chart.Metadata != nil {
		info.Chart = r.Chart.Metadata.Name
		info.ChartVersion = r.Chart.Metadata.Version
		info.AppVersion = r.Chart.Metadata.AppVersion
	}
	return info, nil
}

// Rollback rolls the release back to the revision deployed before the
// current one.
func (e *Engine) Rollback(ctx context.Context, name, namespace string, wait bool, timeout time.Duration) error {
	defer e.lock(name, namespace)()
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg, err := e.actionConfig(namespace)
	if err != nil {
		return err
	}
	hist, err := history(cfg, name)
	if err != nil {
		return err
	}
	cur := -1
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Info.Status == rcommon.StatusDeployed {
			cur = i
			break
		}
	}
	if cur < 0 {
		return fmt.Errorf("release %s/%s: %w", namespace, name, ErrReleaseNotFound)
	}
	var target *releasev1.Release
	for i := cur - 1; i >= 0; i-- {
		if hist[i].Info.Status == rcommon.StatusSuperseded || hist[i].Info.Status == rcommon.StatusDeployed {
			target = hist[i]
			break
		}
	}
	if target == nil {
		return outcome.Stalled(meshv1alpha1.InstallFailedReason, "release %s/%s has no revision deployed before revision %d to roll back to", namespace, name, hist[cur].Version)
	}
	strategy := kube.HookOnlyStrategy
	if wait {
		strategy = kube.StatusWatcherStrategy
	}
	e.log.Info("rolling back release", "release", namespace+"/"+name, "from", hist[cur].Version, "to", target.Version)
	if err := e.rollbackTo(cfg, name, target, strategy, e.waitTimeout(timeout)); err != nil {
		return fmt.Errorf("rolling back release %s/%s to revision %d: %w", namespace, name, target.Version, err)
	}
	return nil
}

// Uninstall removes the release and its history. CRDs are kept: every CRD a
// Meshplane release renders carries helm.sh/resource-policy: keep, and
// before uninstalling a release installed by someone else the annotation is
// added to its stored manifest too. A missing release is not an error.
func (e *Engine) Uninstall(ctx context.Context, name, namespace string, wait bool, timeout time.Duration) error {
	defer e.lock(name, namespace)()
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg, err := e.actionConfig(namespace)
	if err != nil {
		return err
	}
	strategy := kube.HookOnlyStrategy
	if wait {
		strategy = kube.StatusWatcherStrategy
	}
	return e.uninstall(cfg, name, strategy, e.waitTimeout(timeout))
}

func (e *Engine) uninstall(cfg *action.Configuration, name string, strategy kube.WaitStrategy, timeout time.Duration) error {
	// Helm decides what to keep from the stored manifests, so make sure
	// every stored CRD says keep, whoever installed the release.
	hist, err := history(cfg, name)
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		return nil
	}
	for _, r := range hist {
		kept, changed, err := keepCRDsIn(r.Manifest)
		if err != nil {
			return fmt.Errorf("protecting the CRDs of release %s revision %d: %w", name, r.Version, err)
		}
		if changed {
			r.Manifest = kept
			if err := cfg.Releases.Update(r); err != nil {
				return fmt.Errorf("protecting the CRDs of release %s revision %d: %w", name, r.Version, err)
			}
		}
	}
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	un.KeepHistory = false
	un.WaitStrategy = strategy
	un.Timeout = timeout
	un.Description = "Uninstalled by Meshplane"
	e.log.Info("uninstalling release", "release", name)
	if _, err := un.Run(name); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil
		}
		return fmt.Errorf("uninstalling release %s: %w", name, err)
	}
	e.forget(name, cfg)
	return nil
}

// ---- helpers ----

func (e *Engine) result(a Action, r *releasev1.Release, ch *chartv2.Chart) Result {
	return Result{Action: a, Revision: r.Version, Manifest: r.Manifest, Objects: e.objectsOf(r.Manifest, r.Namespace, ch)}
}

func (e *Engine) knownEqual(rel Release, digest string, revision int) bool {
	e.equalMu.Lock()
	defer e.equalMu.Unlock()
	rev, ok := e.equal[rel.Namespace+"/"+rel.Name][digest]
	return ok && rev == revision
}

func (e *Engine) rememberEqual(rel Release, digest string, revision int) {
	e.equalMu.Lock()
	defer e.equalMu.Unlock()
	key := rel.Namespace + "/" + rel.Name
	if e.equal[key] == nil || len(e.equal[key]) > 16 {
		e.equal[key] = map[string]int{}
	}
	e.equal[key][digest] = revision
}

func (e *Engine) forget(name string, cfg *action.Configuration) {
	ns := ""
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		ns = kc.Namespace
	}
	e.equalMu.Lock()
	delete(e.equal, ns+"/"+name)
	e.equalMu.Unlock()
}

func releaserToV1(r any) (*releasev1.Release, error) {
	switch v := r.(type) {
	case *releasev1.Release:
		return v, nil
	case releasev1.Release:
		return &v, nil
	default:
		return nil, fmt.Errorf("unsupported release type %T", r)
	}
}

// history returns the release's revisions sorted by revision; none is not
// an error.
func history(cfg *action.Configuration, name string) ([]*releasev1.Release, error) {
	h, err := cfg.Releases.History(name)
	if err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading history of release %s: %w", name, err)
	}
	out := make([]*releasev1.Release, 0, len(h))
	for _, r := range h {
		v, err := releaserToV1(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

func lastRelease(cfg *action.Configuration, name string) (*releasev1.Release, error) {
	h, err := history(cfg, name)
	if err != nil || len(h) == 0 {
		return nil, err
	}
	return h[len(h)-1], nil
}

func deployedRelease(cfg *action.Configuration, name string) (*releasev1.Release, error) {
	h, err := history(cfg, name)
	if err != nil {
		return nil, err
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Info.Status == rcommon.StatusDeployed {
			return h[i], nil
		}
	}
	return nil, nil
}

func sameChart(r *releasev1.Release, ch *chartv2.Chart) bool {
	return r.Chart != nil && r.Chart.Metadata != nil && r.Chart.Metadata.Name == ch.Metadata.Name && r.Chart.Metadata.Version == ch.Metadata.Version
}

func chartVersion(r *releasev1.Release) string {
	if r.Chart == nil || r.Chart.Metadata == nil {
		return "unknown"
	}
	return r.Chart.Metadata.Name + " " + r.Chart.Metadata.Version
}

func labelsIncluded(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// namespaceExists reports whether namespace ns exists (true when that
// cannot be read: Helm then fails on a missing one, it never writes to an
// existing one).
func namespaceExists(ctx context.Context, cfg *action.Configuration, ns string) bool {
	cs, err := cfg.KubernetesClientSet()
	if err != nil {
		return true
	}
	_, err = cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	return !apierrors.IsNotFound(err)
}
