package outputs

import (
	"context"
	"errors"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Output kinds whose CRDs appear after the manager started.
//
// A controller watches (Owns) the output kinds the API server serves when
// it is set up; a watch on a kind that is not served would stop the
// manager. The other output kinds are handed to a late source: it follows
// CustomResourceDefinitions (metadata only) and, when a missing kind
// becomes served, starts its owner watch on the running controller and
// requeues every object of the controller's kind, so objects that waited
// for the CRD reconcile at once and deleted outputs are recreated from then
// on. A slow timer re-checks too, in case a CRD event came before
// discovery served the kind.
//
// While a kind is missing, an object that needs it is Reconciling with
// reason OutputKindMissing naming the kind and its CRD (MissingKind), and
// is not retried in a tight loop: the late source requeues it. /readyz
// stays green: the manager works, the objects that cannot are not Ready
// and say why, which is where a user looks.

// lateRecheck is how often missing output kinds are re-checked without a
// CRD event.
const lateRecheck = time.Minute

// missingKindRetry is the requeue of an object waiting for an output kind,
// a fallback for the late source's requeue.
const missingKindRetry = 10 * time.Minute

// lateOutputs returns the source that starts the watches of missing when
// their CRDs appear.
func lateOutputs(mgr *manager.Manager, k Kind, missing []client.Object) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		go watchLate(ctx, mgr, k, missing, q)
		return nil
	})
}

func watchLate(ctx context.Context, mgr *manager.Manager, k Kind, pending []client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	logger := log.FromContext(ctx).WithValues("controller", k.Name)
	poke := make(chan struct{}, 1)
	notify := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	crds := &metav1.PartialObjectMetadata{}
	crds.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	if inf, err := mgr.GetCache().GetInformer(ctx, crds); err != nil {
		logger.Error(err, "cannot follow CRDs; missing output kinds are re-checked every minute")
	} else if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { notify() }, UpdateFunc: func(any, any) { notify() },
	}); err != nil {
		logger.Error(err, "cannot follow CRDs; missing output kinds are re-checked every minute")
	}
	tick := time.NewTicker(lateRecheck)
	defer tick.Stop()
	for len(pending) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-tick.C:
		}
		// Discovery may serve a new kind a moment after its CRD event.
		for try := 0; try < 5 && len(pending) > 0; try++ {
			n := len(pending)
			pending = startServed(ctx, mgr, k, pending, q)
			if len(pending) < n {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// startServed starts the owner watch of every pending kind now served,
// requeues every object of k when one started, and returns the kinds
// still missing.
func startServed(ctx context.Context, mgr *manager.Manager, k Kind, pending []client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) []client.Object {
	served := apply.Served(mgr.GetRESTMapper(), mgr.GetScheme(), pending...)
	if len(served) == 0 {
		return pending
	}
	var rest []client.Object
	for _, o := range pending {
		if !contains(served, o) {
			rest = append(rest, o)
		}
	}
	for _, o := range served {
		src := source.Kind(mgr.GetCache(), o, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), k.Object, handler.OnlyControllerOwner()))
		if err := src.Start(ctx, q); err != nil {
			log.FromContext(ctx).Error(err, "cannot watch output kind", "controller", k.Name, "kind", fmt.Sprintf("%T", o))
			rest = append(rest, o)
			continue
		}
		gvk, _ := apiutil.GVKForObject(o, mgr.GetScheme())
		log.FromContext(ctx).Info("output kind served; watching it", "controller", k.Name, "kind", gvk.String())
	}
	l := k.List.DeepCopyObject().(client.ObjectList)
	if err := mgr.GetCache().List(ctx, l); err == nil {
		items, _ := meta.ExtractList(l)
		for _, it := range items {
			if o, ok := it.(client.Object); ok {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
			}
		}
	}
	return rest
}

func contains(l []client.Object, o client.Object) bool {
	for _, x := range l {
		if x == o {
			return true
		}
	}
	return false
}

// MissingKind turns an error of writing an output whose kind the API
// server does not serve (its CRD is not installed) into a wait with reason
// OutputKindMissing naming the kind, its CRD and the fix; other errors are
// returned as they are.
func MissingKind(err error) error {
	if err == nil || !meta.IsNoMatchError(err) {
		return err
	}
	what := "an output kind"
	var nk *meta.NoKindMatchError
	var nr *meta.NoResourceMatchError
	switch {
	case errors.As(err, &nk):
		gvr, _ := meta.UnsafeGuessKindToResource(nk.GroupKind.WithVersion(""))
		what = fmt.Sprintf("output kind %s.%s (CRD %s.%s)", nk.GroupKind.Kind, nk.GroupKind.Group, gvr.Resource, nk.GroupKind.Group)
	case errors.As(err, &nr):
		what = fmt.Sprintf("output resource %s", nr.PartialResource.GroupResource())
	}
	return outcome.Wait(meshv1alpha1.OutputKindMissingReason, missingKindRetry,
		"%s is not served by the API server: install that CRD (it ships with the mesh's or Gateway API's CRDs); Meshplane starts watching it when it appears and reconciles this object then (%v)", what, err)
}

// Apply writes the outputs of owner through d.Applier; an output kind the
// API server does not serve is a wait (MissingKind), not an apply failure.
func (d *Deps) Apply(ctx context.Context, owner apply.Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference) (apply.Result, error) {
	res, err := d.Applier.Apply(ctx, owner, objs, previous)
	return res, MissingKind(err)
}

// PrepareToCommit is Prepare for a caller that only records bookkeeping on
// its own object before Commit (apply.PrepareToCommit: the first write is
// its own check).
func (d *Deps) PrepareToCommit(ctx context.Context, owner apply.Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference) (*apply.Plan, error) {
	plan, err := d.Applier.PrepareToCommit(ctx, owner, objs, previous)
	return plan, MissingKind(err)
}

// Prepare dry-runs the outputs of owner through d.Applier (apply.Prepare);
// an output kind the API server does not serve is a wait (MissingKind).
func (d *Deps) Prepare(ctx context.Context, owner apply.Owner, objs []client.Object, previous []meshv1alpha1.ObjectReference) (*apply.Plan, error) {
	plan, err := d.Applier.Prepare(ctx, owner, objs, previous)
	return plan, MissingKind(err)
}
