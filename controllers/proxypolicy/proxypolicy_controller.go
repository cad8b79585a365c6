package proxypolicy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// +kubebuilder:rbac:groups=meshplane.io,resources=proxypolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=proxypolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshplane.io,resources=proxypolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups=meshplane.io,resources=egresspolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The output kinds' rules are beside the providers (internal/mesh/<mesh>).

// Kind is the owner kind in labels and inventories.
const Kind = "ProxyPolicy"

// controllerName is the controller's name: its --concurrent key and Event
// reporter.
const controllerName = "proxypolicy"

// Finalizer is set while the policy holds annotations of workloads.
const Finalizer = outputs.SharedFieldsFinalizer

// gateRetry is how often a batched rollout re-checks the health gate
// (workload status changes also wake it).
const gateRetry = 5 * time.Second

// SharedKinds are the workload kinds whose pod-template annotations a
// ProxyPolicy sets.
var SharedKinds = []schema.GroupKind{
	{Group: "apps", Kind: "Deployment"}, {Group: "apps", Kind: "StatefulSet"}, {Group: "apps", Kind: "DaemonSet"},
}

// Reconciler reconciles ProxyPolicies.
type Reconciler struct {
	outputs.Deps
}

// Setup registers the controller with mgr: the policies (spec changes and
// deletions starting), their outputs, the other ProxyPolicies and the
// EgressPolicies of the namespace (a Conflict), and the namespace's
// workloads (selection, drift of an annotation, the health gate).
func Setup(mgr *manager.Manager) error {
	r := &Reconciler{Deps: outputs.NewDeps(mgr.GetClient(), mgr, controllerName)}
	kind := outputs.Kind{Name: controllerName, Object: &meshv1alpha1.ProxyPolicy{}, List: &meshv1alpha1.ProxyPolicyList{},
		Predicate: predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, outputs.DeletionStarted),
		Outputs:   mgr.Registry.ProxyOutputKinds()}
	b := outputs.Controller(mgr, r.Client, kind).
		Watches(&meshv1alpha1.ProxyPolicy{}, overlap.EnqueueContenders(r.Client, kind.List, func(a, b *meshv1alpha1.ProxyPolicy) bool {
			return overlap.SelectorsOverlap(a.Spec.Selector, b.Spec.Selector)
		}, statusOf), builder.WithPredicates(overlap.Changes)).
		Watches(&meshv1alpha1.EgressPolicy{}, egressContenders(r.Client), builder.WithPredicates(overlap.Changes))
	for _, o := range []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}} {
		b = b.Watches(o, selecting(r.Client, kind.List))
	}
	return b.Complete(r)
}

func statusOf(p *meshv1alpha1.ProxyPolicy) *meshv1alpha1.CommonStatus { return &p.Status.CommonStatus }

// egressContenders enqueues, for an EgressPolicy's event, the ProxyPolicies
// it can block or free: an EgressPolicy contends only with the egressScope
// of a policy whose selector may share a workload with it.
func egressContenders(c client.Reader) handler.EventHandler {
	return overlap.EnqueueContenders(c, &meshv1alpha1.ProxyPolicyList{}, func(e *meshv1alpha1.EgressPolicy, p *meshv1alpha1.ProxyPolicy) bool {
		return p.Spec.EgressScope != nil && overlap.SelectorsOverlap(e.Spec.Selector, p.Spec.Selector)
	}, statusOf)
}

// selecting enqueues, for a workload's event, the ProxyPolicies of its
// namespace whose selector matches its pod-template labels before or
// after the change (selection, an annotation's drift, the health gate),
// namespace-wide ones, and those whose selector does not parse. A
// workload's status changes with every pod it rolls:
// reconciling every ProxyPolicy of the namespace for each was a reconcile
// per policy per pod change.
func selecting(c client.Reader, list client.ObjectList) handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		var sets []labels.Set
		for _, o := range objs {
			if tmpl := templateOf(o); tmpl != nil {
				sets = append(sets, labels.Set(tmpl.Labels))
			}
		}
		keep := func(o client.Object) bool {
			p, ok := o.(*meshv1alpha1.ProxyPolicy)
			if !ok {
				return false
			}
			if p.Spec.Selector == nil {
				return true
			}
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			return err != nil || slices.ContainsFunc(sets, func(s labels.Set) bool { return sel.Matches(s) })
		}
		for _, r := range outputs.Requests(ctx, c, list, objs[0].GetNamespace(), keep) {
			q.Add(r)
		}
	}
	return overlap.OnObjects(enqueue)
}

// templateOf returns a workload's pod template metadata; nil for another
// object.
func templateOf(o client.Object) *metav1.ObjectMeta {
	switch w := o.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template.ObjectMeta
	case *appsv1.StatefulSet:
		return &w.Spec.Template.ObjectMeta
	case *appsv1.DaemonSet:
		return &w.Spec.Template.ObjectMeta
	}
	return nil
}

// Reconcile brings one ProxyPolicy's outputs and workload annotations to
// its spec; a deletion restores the workloads' annotations.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &meshv1alpha1.ProxyPolicy{}
	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, p)
	if patcher == nil || !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.release(ctx, p, patcher, err)
	}
	out, err := r.reconcile(ctx, p, patcher)
	r.Record(ctx, p, out.provider, out.applied, err)
	return status.Finish(ctx, patcher, p, setStatus(p, out, err), err, meshv1alpha1.ApplyFailedReason)
}

// release ends a reconcile that found no policy (beginErr says why) or a
// policy being deleted: its shared fields are restored and released (the
// Sidecar is left to the garbage collector).
func (r *Reconciler) release(ctx context.Context, p *meshv1alpha1.ProxyPolicy, patcher *status.Patcher, beginErr error) error {
	if patcher == nil {
		return beginErr
	}
	return errors.Join(r.ReleaseShared(ctx, p, Kind, record(p)), patcher.Patch(ctx, p))
}

// record points at p's inventory and shared fields.
func record(p *meshv1alpha1.ProxyPolicy) outputs.SharedRecord {
	return outputs.SharedRecord{Inventory: &p.Status.Inventory, Fields: &p.Status.SharedFields, Kinds: SharedKinds}
}

// result is what the phases found and did: the mesh, the BreakGlass that
// holds the policy (if any), the rollout plan, how many outputs the policy
// owns (Istio's Sidecar) and what the apply did.
type result struct {
	heldBy   *meshv1alpha1.BreakGlass
	provider meshv1alpha1.Provider
	rollout  rolloutPlan
	owned    int
	applied  apply.Result
}

// reconcile runs the phases: the BreakGlass hold, the mesh, translation
// and what the mesh can express as installed, the overlap rule, the
// selected workloads and the rollout plan, then the apply.
func (r *Reconciler) reconcile(ctx context.Context, p *meshv1alpha1.ProxyPolicy, patcher *status.Patcher) (out result, err error) {
	if out.heldBy, err = r.HeldBy(ctx, p.Namespace, p.Status.Provider); out.heldBy != nil || err != nil {
		return out, err
	}
	cfg, err := r.translate(ctx, p, &out)
	if err != nil {
		return out, err
	}
	objs := cfg.Objects
	out.owned = len(objs)
	if err := overlap.Proxy(ctx, r.Client, p); err != nil {
		return out, err
	}
	sel, err := selected(ctx, r.Client, p)
	if err != nil {
		return out, err
	}
	out.rollout = planRollout(cfg.Annotations, sel, recordsOf(p.Status.SharedFields), p.Spec.Rollout)
	objs = append(objs, partials(p.Namespace, out.rollout.desired)...)
	owner := apply.Owner{Object: p, Kind: Kind, SharedFields: p.Status.SharedFields, SharedKinds: SharedKinds}
	// A refusal writes nothing: every write but the first is dry-run
	// first, and the first is written before anything else.
	plan, err := r.PrepareToCommit(ctx, owner, objs, p.Status.Inventory)
	if err != nil {
		out.applied = plan.Failed()
		return out, err
	}
	if err := outputs.RecordShared(ctx, p, plan, patcher, record(p)); err != nil {
		return out, err
	}
	if out.applied, err = plan.Commit(ctx); err != nil {
		return out, err
	}
	outputs.GuardShared(p, out.applied.Inventory, SharedKinds...)
	return out, nil
}

// translate resolves the mesh (recorded in out) and translates p for it,
// as the mesh is installed and the namespace's data plane runs.
func (r *Reconciler) translate(ctx context.Context, p *meshv1alpha1.ProxyPolicy, out *result) (mesh.ProxyConfig, error) {
	var cfg mesh.ProxyConfig
	found, err := r.Resolver.Resolve(ctx, p.Namespace, p.Spec.Provider)
	if err != nil {
		return cfg, err
	}
	out.provider = found.Provider
	translator, err := r.Registry.ProxyTranslator(found.Provider)
	if err != nil {
		return cfg, err
	}
	_, err = r.TranslateIn(ctx, p.Namespace, found, translator, func(f mesh.NamespaceFacts) ([]client.Object, error) {
		var err error
		cfg, err = translator.TranslateProxyPolicy(p, f)
		return cfg.Objects, err
	}, mesh.ProxyPolicyRequirements(&p.Spec)...)
	return cfg, err
}

// selected lists the namespace's Deployments, StatefulSets and DaemonSets
// whose pod-template labels p's selector matches (all without one),
// sorted by kind and name, except those Meshplane owns and those being
// deleted.
func selected(ctx context.Context, c client.Reader, p *meshv1alpha1.ProxyPolicy) ([]workload, error) {
	sel := labels.Everything()
	if p.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			return nil, invalidSelector(err)
		}
		sel = s
	}
	var out []workload
	add := func(kind string, obj client.Object, tmpl *metav1.ObjectMeta) {
		if !obj.GetDeletionTimestamp().IsZero() || obj.GetLabels()[ownership.ManagedByLabel] == ownership.ManagedByValue ||
			!sel.Matches(labels.Set(tmpl.Labels)) {
			return
		}
		ready, why := upgrade.WorkloadReady(obj)
		out = append(out, workload{
			ref:         meshv1alpha1.ObjectReference{APIVersion: "apps/v1", Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()},
			annotations: tmpl.Annotations, ready: ready, why: why,
		})
	}
	var deps appsv1.DeploymentList
	var sts appsv1.StatefulSetList
	var dss appsv1.DaemonSetList
	for _, l := range []client.ObjectList{&deps, &sts, &dss} {
		if err := c.List(ctx, l, client.InNamespace(p.Namespace)); err != nil {
			return nil, err
		}
	}
	for i := range deps.Items {
		add("Deployment", &deps.Items[i], &deps.Items[i].Spec.Template.ObjectMeta)
	}
	for i := range dss.Items {
		add("DaemonSet", &dss.Items[i], &dss.Items[i].Spec.Template.ObjectMeta)
	}
	for i := range sts.Items {
		add("StatefulSet", &sts.Items[i], &sts.Items[i].Spec.Template.ObjectMeta)
	}
	slices.SortFunc(out, func(a, b workload) int {
		return strings.Compare(a.ref.Kind+"/"+a.ref.Name, b.ref.Kind+"/"+b.ref.Name)
	})
	return out, nil
}

// partials are the workloads' shared outputs: apiVersion, kind, name and
// the pod-template annotations only, in a stable order.
func partials(ns string, desired map[meshv1alpha1.ObjectReference]map[string]string) []client.Object {
	refs := make([]meshv1alpha1.ObjectReference, 0, len(desired))
	for ref := range desired {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b meshv1alpha1.ObjectReference) int {
		return strings.Compare(a.Kind+"/"+a.Name, b.Kind+"/"+b.Name)
	})
	out := make([]client.Object, 0, len(refs))
	for _, ref := range refs {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(ref.APIVersion)
		u.SetKind(ref.Kind)
		u.SetNamespace(ns)
		u.SetName(ref.Name)
		ann := map[string]any{}
		for k, v := range desired[ref] {
			ann[k] = v
		}
		_ = unstructured.SetNestedMap(u.Object, ann, "spec", "template", "metadata", "annotations")
		out = append(out, u)
	}
	return out
}
