// Package meshrevision reconciles MeshRevision: one Istio control-plane
// revision (istiod-<rev>) beside others. It installs the revision's istiod,
// points the revision's own tags at it, and reports what still uses it, so
// an old revision is removed only when no namespace label, tag or running
// pod does.
package meshrevision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/install"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// Finalizer holds a MeshRevision until its istiod is uninstalled (or
// orphaned) and nothing uses it.
const Finalizer = "meshplane.io/meshrevision"

// Reconciler reconciles MeshRevision objects.
type Reconciler struct {
	client.Client
	// APIReader reads chart credentials uncached.
	APIReader client.Reader
	// Registry resolves providers (fails closed).
	Registry *mesh.Registry
	// Helm installs istiod.
	Helm install.Helm
	// Recorder emits an Event per write.
	Recorder record.EventRecorder
	// OperatorNamespace holds chart credentials.
	OperatorNamespace string
	// Now is the clock (tests).
	Now func() time.Time
}

// Reconcile moves one MeshRevision towards its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	rv := &meshv1alpha1.MeshRevision{}
	if err := r.Get(ctx, req.NamespacedName, rv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(r.Client, rv)
	defer func() {
		if err := patcher.Patch(ctx, rv); err != nil {
			if apierrors.IsConflict(err) {
				res = ctrl.Result{Requeue: true}
				return
			}
			retErr = errors.Join(retErr, err)
		}
	}()
	mi, p, err := r.owner(ctx, rv)
	if !rv.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, rv, mi)
	}
	if err == nil && controllerutil.AddFinalizer(rv, Finalizer) {
		return ctrl.Result{Requeue: true}, nil
	}
	if err == nil {
		res, err = r.reconcile(ctx, rv, mi, p)
	}
	return computeStatus(rv, res, err)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// owner returns the MeshInstall and its Istio provider.
func (r *Reconciler) owner(ctx context.Context, rv *meshv1alpha1.MeshRevision) (*meshv1alpha1.MeshInstall, mesh.Installer, error) {
	mi := &meshv1alpha1.MeshInstall{}
	if err := r.Get(ctx, client.ObjectKey{Name: rv.Spec.MeshInstallRef.Name}, mi); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
				"spec.meshInstallRef names MeshInstall %s, which does not exist; create it or fix the reference", rv.Spec.MeshInstallRef.Name)
		}
		return nil, nil, err
	}
	if mi.Spec.Provider != meshv1alpha1.ProviderIstio {
		return mi, nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"MeshInstall %s runs %s; revisions are an Istio feature", mi.Name, mi.Spec.Provider)
	}
	p, err := r.Registry.Installer(mi.Spec.Provider)
	return mi, p, err
}

func namespaceOf(mi *meshv1alpha1.MeshInstall) string {
	if mi.Status.Namespace != "" {
		return mi.Status.Namespace
	}
	if mi.Spec.Namespace != "" {
		return mi.Spec.Namespace
	}
	return istio.DefaultNamespace
}

// reconcile installs istiod, points the revision's tags at it and records
// its usage.
func (r *Reconciler) reconcile(ctx context.Context, rv *meshv1alpha1.MeshRevision, mi *meshv1alpha1.MeshInstall, p mesh.Installer) (ctrl.Result, error) {
	if bg, err := incident.ForMeshInstall(ctx, r.Client, mi); err != nil {
		return ctrl.Result{}, err
	} else if incident.DetachesInjection(bg) {
		// istiod's chart and the tag webhooks carry the injector webhooks
		// the BreakGlass neutralised; neither is re-applied while it holds.
		return ctrl.Result{}, &heldError{bg: bg}
	}
	ns := namespaceOf(mi)
	c := mesh.Chart{Name: "istiod", ReleaseName: istio.IstiodReleaseName(rv.Name), Repository: istio.ChartRepository}
	vals, err := install.Compose(p, mi, c, mesh.InstallContext{Namespace: ns, Version: rv.Spec.Version, Revision: rv.Name}, rv.Spec.Values)
	if err != nil {
		return ctrl.Result{}, err
	}
	src, err := install.Source(ctx, r.APIReader, mi, c, r.OperatorNamespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	rel := helm.Release{Name: c.ReleaseName, Namespace: ns, Chart: c.Name, Version: install.ChartVersion(p, mi, rv.Spec.Version), Source: src, Values: vals}
	if rv.Status.Phase == "" {
		rv.Status.Phase = "Installing"
	}
	res, err := r.Helm.Ensure(ctx, rel, false, 0)
	if err != nil {
		rv.Status.Phase = "Failed"
		return ctrl.Result{}, err
	}
	if res.Action != helm.ActionNone {
		r.Recorder.Eventf(rv, corev1.EventTypeNormal, string(res.Action), "Helm release %s/%s: %s istiod %s (revision %d)", ns, rel.Name, res.Action, rel.Version, res.Revision)
	}
	if err := r.ensureTags(ctx, rv, ns); err != nil {
		return ctrl.Result{}, err
	}
	usage, err := r.usage(ctx, rv)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.recordUsage(rv, usage)
	ready, msg, err := r.istiodReady(ctx, rv, ns, res.Objects)
	if err != nil {
		return ctrl.Result{}, err
	}
	gen := rv.Generation
	if !ready {
		status.Set(&rv.Status.CommonStatus, gen, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason, msg)
		return ctrl.Result{}, &waitError{reason: meshv1alpha1.ComponentsNotReadyReason, msg: "istiod of revision " + rv.Name + ": " + msg, after: 5 * time.Second}
	}
	status.Set(&rv.Status.CommonStatus, gen, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "istiod is Available")
	rv.Status.Phase = "Ready"
	if usage.InUse() {
		rv.Status.Phase = "InUse"
	}
	return ctrl.Result{RequeueAfter: usagePoll(usage)}, nil
}

// usagePoll re-reads usage while pods still run on a revision nothing
// else selects, so deletable flips soon after the last pod is gone.
func usagePoll(u upgrade.Usage) time.Duration {
	if len(u.Namespaces) == 0 && len(u.Tags) == 0 && u.Pods > 0 {
		return 2 * time.Second
	}
	return 0
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
			cs.Ready, cs.Message = install.WorkloadReady(&d)
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

// ensureTags points spec.tags at this revision and removes tag webhooks of
// this revision that are no longer listed. A tag webhook Meshplane did not
// create is a Conflict.
func (r *Reconciler) ensureTags(ctx context.Context, rv *meshv1alpha1.MeshRevision, ns string) error {
	owner := ownership.Labels("MeshRevision", "", rv.Name)
	var existing admissionregistrationv1.MutatingWebhookConfigurationList
	if err := r.List(ctx, &existing, client.MatchingLabels{ownership.OwnerLabel: owner[ownership.OwnerLabel]}); err != nil {
		return err
	}
	for i := range existing.Items {
		if tag := existing.Items[i].Labels[install.TagLabel]; !slices.Contains(rv.Spec.Tags, tag) {
			if err := r.Delete(ctx, &existing.Items[i]); client.IgnoreNotFound(err) != nil {
				return err
			}
			r.Recorder.Eventf(rv, corev1.EventTypeNormal, "TagRemoved", "removed revision tag %s", tag)
		}
	}
	if len(rv.Spec.Tags) == 0 {
		return nil
	}
	var injector admissionregistrationv1.MutatingWebhookConfiguration
	if err := r.Get(ctx, client.ObjectKey{Name: istio.InjectorWebhookName(rv.Name, ns)}, &injector); err != nil {
		if apierrors.IsNotFound(err) {
			return &waitError{reason: meshv1alpha1.ProgressingReason, msg: "waiting for the injector of revision " + rv.Name, after: 2 * time.Second}
		}
		return err
	}
	for _, tag := range rv.Spec.Tags {
		want, err := install.TagWebhook(tag, rv.Name, &injector)
		if err != nil {
			return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%v", err)
		}
		for k, v := range owner {
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
		case !ownership.IsOwnedBy(&cur, "MeshRevision", "", rv.Name):
			return outcome.Stalled(meshv1alpha1.ConflictReason, "revision tag %s is already served by webhook %s, which this MeshRevision did not create (revision %s); remove the tag there first",
				tag, cur.Name, cur.Labels[istio.RevLabel])
		case equality.Semantic.DeepEqual(cur.Webhooks, want.Webhooks):
			continue
		default:
			cur.Webhooks = want.Webhooks
			if err := r.Update(ctx, &cur, client.FieldOwner(ownership.FieldManager)); err != nil {
				return err
			}
		}
		r.Recorder.Eventf(rv, corev1.EventTypeNormal, "TagSet", "revision tag %s points at revision %s", tag, rv.Name)
	}
	return nil
}

// usage computes what uses the revision from namespaces, tag webhooks and
// pod metadata.
func (r *Reconciler) usage(ctx context.Context, rv *meshv1alpha1.MeshRevision) (upgrade.Usage, error) {
	var hooks admissionregistrationv1.MutatingWebhookConfigurationList
	if err := r.List(ctx, &hooks, client.HasLabels{install.TagLabel}); err != nil {
		return upgrade.Usage{}, err
	}
	tags := map[string]string{}
	for _, h := range hooks.Items {
		tags[h.Labels[install.TagLabel]] = h.Labels[istio.RevLabel]
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
		t := metav1.NewTime(r.now())
		st.UnusedSince = &t
	}
	status.Set(&st.CommonStatus, gen, meshv1alpha1.InUseCondition, metav1.ConditionFalse, meshv1alpha1.SucceededReason, "no namespace, tag or pod uses this revision")
}
