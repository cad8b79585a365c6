package meshrevision

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// install installs istiod, points the revision's tags at it and records
// its usage.
func (r *Reconciler) install(ctx context.Context, rv *meshv1alpha1.MeshRevision, mi *meshv1alpha1.MeshInstall, p mesh.Revisioner) (result, error) {
	bg, err := incident.ForMeshInstall(ctx, r.Client, mi)
	if err != nil {
		return result{}, err
	}
	if incident.DetachesInjection(bg) {
		// istiod's chart and the tag webhooks carry the injector webhooks
		// the BreakGlass neutralised; neither is re-applied while it holds.
		return result{heldBy: bg}, nil
	}
	ns := namespaceOf(mi)
	res, err := r.ensureIstiod(ctx, rv, mi, p, ns)
	if err != nil {
		return result{}, err
	}
	if err := r.ensureTags(ctx, rv, ns); err != nil {
		return result{}, err
	}
	usage, err := r.usage(ctx, rv)
	if err != nil {
		return result{}, err
	}
	r.recordUsage(rv, usage)
	ready, msg, err := r.istiodReady(ctx, rv, ns, res.Objects)
	if err != nil {
		return result{}, err
	}
	gen := rv.Generation
	if !ready {
		status.Set(&rv.Status.CommonStatus, gen, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason, msg)
		return result{}, outcome.Wait(meshv1alpha1.ComponentsNotReadyReason, 5*time.Second, "istiod of revision %s: %s", rv.Name, msg)
	}
	status.Set(&rv.Status.CommonStatus, gen, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "istiod is Available")
	rv.Status.Phase = "Ready"
	if usage.InUse() {
		rv.Status.Phase = "InUse"
	}
	return result{requeueAfter: usagePoll(len(usage.Namespaces), len(usage.Tags), usage.Pods)}, nil
}

// ensureIstiod installs or upgrades the revision's istiod release.
func (r *Reconciler) ensureIstiod(ctx context.Context, rv *meshv1alpha1.MeshRevision, mi *meshv1alpha1.MeshInstall, p mesh.Revisioner, ns string) (helm.Result, error) {
	c := mesh.Chart{Name: p.RevisionChart(), ReleaseName: istio.IstiodReleaseName(rv.Name), Repository: istio.ChartRepository}
	vals, err := helm.Compose(p, mi, c, mesh.InstallContext{Namespace: ns, Version: rv.Spec.Version, Revision: rv.Name}, rv.Spec.Values)
	if err != nil {
		return helm.Result{}, err
	}
	src, err := helm.SourceFor(ctx, r.APIReader, mi, c, r.OperatorNamespace)
	if err != nil {
		return helm.Result{}, err
	}
	rel := helm.Release{Name: c.ReleaseName, Namespace: ns, Chart: c.Name, Version: helm.ChartVersion(p, mi, rv.Spec.Version), Source: src, Values: vals}
	if rv.Status.Phase == "" {
		rv.Status.Phase = "Installing"
	}
	res, err := r.Helm.Ensure(ctx, rel, false, 0)
	if err != nil {
		rv.Status.Phase = "Failed"
		return res, err
	}
	if res.Action != helm.ActionNone {
		r.event(rv, string(res.Action), "Helm", "Helm release %s/%s: %s istiod %s (revision %d)", ns, rel.Name, res.Action, rel.Version, res.Revision)
	}
	return res, nil
}

// istiodReady checks the revision's istiod Deployment(s).
func (r *Reconciler) istiodReady(ctx context.Context, rv *meshv1alpha1.MeshRevision, ns string, refs []helm.ObjectRef) (bool, string, error) {
	if len(refs) == 0 {
		info, err := r.Helm.Get(ctx, istio.IstiodReleaseName(rv.Name), ns)
		if err != nil {
			return false, "", err
		}
		refs = info.Objects
	}
	var comps []meshv1alpha1.ComponentStatus
	var waitingFor []string
	for _, ref := range refs {
		if ref.Group != "apps" || ref.Kind != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		cs := meshv1alpha1.ComponentStatus{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &d); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return false, "", err
			}
			cs.Message = "not found"
		} else {
			cs.Ready, cs.Message = upgrade.WorkloadReady(&d)
		}
		if !cs.Ready {
			waitingFor = append(waitingFor, fmt.Sprintf("Deployment %s/%s: %s", ref.Namespace, ref.Name, cs.Message))
		}
		comps = append(comps, cs)
	}
	if len(comps) > 16 {
		comps = comps[:16]
	}
	rv.Status.Components = comps
	if len(comps) == 0 {
		return false, "the istiod chart rendered no Deployment", nil
	}
	if len(waitingFor) > 0 {
		return false, fmt.Sprint(waitingFor), nil
	}
	return true, "", nil
}

// ensureTags points spec.tags at this revision (istio.EnsureTag) and
// removes the tag webhooks of this revision that are no longer listed. A
// tag webhook Meshplane did not create is a Conflict.
func (r *Reconciler) ensureTags(ctx context.Context, rv *meshv1alpha1.MeshRevision, ns string) error {
	w := r.tagWriter(rv)
	pruned, err := istio.PruneTags(ctx, w, rv.Spec.Tags)
	if err != nil {
		return err
	}
	for _, c := range pruned {
		r.event(rv, "TagRemoved", "Prune", "removed revision tag webhook %s", c.Object.Name)
	}
	for _, tag := range rv.Spec.Tags {
		res, err := istio.EnsureTag(ctx, w, tag, rv.Name, ns)
		if err != nil {
			return err
		}
		if res.Wrote() {
			r.event(rv, "TagSet", "Apply", "revision tag %s points at revision %s", tag, rv.Name)
		}
	}
	return nil
}

// usage computes what uses the revision from namespaces, tag webhooks and
// pod metadata.
func (r *Reconciler) usage(ctx context.Context, rv *meshv1alpha1.MeshRevision) (upgrade.Usage, error) {
	tags, err := istio.TagsOf(ctx, r.Client)
	if err != nil {
		return upgrade.Usage{}, err
	}
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss); err != nil {
		return upgrade.Usage{}, err
	}
	nsLabels := make(map[string]map[string]string, len(nss.Items))
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp.IsZero() {
			nsLabels[ns.Name] = ns.Labels
		}
	}
	var pods metav1.PartialObjectMetadataList
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.List(ctx, &pods, client.MatchingLabels{istio.RevLabel: rv.Name}); err != nil {
		return upgrade.Usage{}, err
	}
	podLabels := make([]map[string]string, 0, len(pods.Items))
	for _, p := range pods.Items {
		// istiod's own pods carry its revision label; they run it, they do
		// not use it.
		if p.Labels["app"] == "istiod" || !p.DeletionTimestamp.IsZero() {
			continue
		}
		podLabels = append(podLabels, p.Labels)
	}
	return upgrade.RevisionUsage(rv.Name, tags, nsLabels, podLabels), nil
}

// recordUsage records what uses the revision and since when nothing does.
func (r *Reconciler) recordUsage(rv *meshv1alpha1.MeshRevision, u upgrade.Usage) {
	st := &rv.Status
	st.Tags = u.Tags
	st.NamespaceCount = int32(len(u.Namespaces))
	st.Namespaces = u.Namespaces
	if len(st.Namespaces) > 256 {
		st.Namespaces = st.Namespaces[:256]
	}
	st.PodCount = int32(u.Pods)
	st.Deletable = !u.InUse()
	gen := rv.Generation
	if u.InUse() {
		st.UnusedSince = nil
		status.Set(&st.CommonStatus, gen, meshv1alpha1.InUseCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
			fmt.Sprintf("used by %d namespaces, %d pods and tags %v", len(u.Namespaces), u.Pods, u.Tags))
		return
	}
	if st.UnusedSince == nil {
		t := metav1.NewTime(r.Clock.Now())
		st.UnusedSince = &t
	}
	status.Set(&st.CommonStatus, gen, meshv1alpha1.InUseCondition, metav1.ConditionFalse, meshv1alpha1.SucceededReason, "no namespace, tag or pod uses this revision")
}
