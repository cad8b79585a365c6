package meshfederation

import (
	"context"

	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/manager"
)

// exportWatches adds, for the local cluster, watches (metadata only) on
// ServiceExports (every federation with services looks again) and on the
// ServiceImports and the meshes' export outputs (their federation repairs
// them), for each kind the API server serves when the manager
// starts: a watch on a kind that is not served would stop the manager. A
// kind whose CRD appears later, and remote members (never watched), are
// looked at again at the resync and when the federation changes.
func (r *Reconciler) exportWatches(mgr *manager.Manager, b *builder.Builder) *builder.Builder {
	served := func(gvk schema.GroupVersionKind) bool {
		_, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		return err == nil
	}
	if served(mcsv1beta1.SchemeGroupVersion.WithKind(mcsv1beta1.ServiceExportKindName)) {
		b = b.Watches(&mcsv1beta1.ServiceExport{}, handler.EnqueueRequestsFromMapFunc(r.mapExport), builder.OnlyMetadata)
	}
	if served(mcsv1beta1.SchemeGroupVersion.WithKind(mcsv1beta1.ServiceImportKindName)) {
		b = b.Watches(&mcsv1beta1.ServiceImport{}, handler.EnqueueRequestsFromMapFunc(r.mapOwned), builder.OnlyMetadata)
	}
	for _, obj := range r.exportOutputKinds(mgr) {
		if gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme()); err == nil && served(gvk) {
			b = b.Watches(obj, handler.EnqueueRequestsFromMapFunc(r.mapOwned), builder.OnlyMetadata)
		}
	}
	return b
}

// exportOutputKinds are empty objects of the kinds the registered meshes'
// exports write, once each.
func (r *Reconciler) exportOutputKinds(mgr *manager.Manager) []client.Object {
	seen := map[schema.GroupVersionKind]bool{}
	var out []client.Object
	for _, p := range meshv1alpha1.Providers {
		se, err := r.Registry.ServiceExporter(p)
		if err != nil {
			continue
		}
		for _, l := range se.ExportOutputKinds() {
			gvk, err := apiutil.GVKForObject(l, mgr.GetScheme())
			if err != nil {
				continue
			}
			gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
			o, err := mgr.GetScheme().New(gvk)
			if obj, ok := o.(client.Object); ok && err == nil && !seen[gvk] {
				seen[gvk] = true
				out = append(out, obj)
			}
		}
	}
	return out
}

// mapExport enqueues the federation a ServiceExport names
// (FederationLabel), or every federation with spec.services.
func (r *Reconciler) mapExport(ctx context.Context, obj client.Object) []reconcile.Request {
	if f, ok := obj.GetLabels()[FederationLabel]; ok {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: f}}}
	}
	var list meshv1alpha1.MeshFederationList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, f := range list.Items {
		if f.Spec.Services != nil {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: f.Name}})
		}
	}
	return out
}
