package meshfederation

import (
	"context"
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
)

// +kubebuilder:rbac:groups=multicluster.x-k8s.io,resources=serviceexports,verbs=get;list;watch
// +kubebuilder:rbac:groups=multicluster.x-k8s.io,resources=serviceimports,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=multicluster.x-k8s.io,resources=serviceimports/status,verbs=get;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// FederationLabel, on a ServiceExport, names the one MeshFederation that
// exports it; a ServiceExport without it is exported by every federation
// with services that has its cluster as a member.
const FederationLabel = "meshplane.io/federation"

// MaxExports bounds the exported services a federation tracks (the size
// of status.exports).
const MaxExports = 256

// memberExport is one member's part in service export during a reconcile:
// what it exports (its ServiceExports), what it imports and why not.
type memberExport struct {
	se mesh.ServiceExporter
	// note says why the member neither exports nor imports (its mesh does
	// not translate exports, the MCS CRDs are not installed); unknown why
	// its exports could not be read.
	note, unknown string
	// exports are the Services its ServiceExports export; invalid names the
	// ServiceExports that export no Service.
	exports []*corev1.Service
	invalid []string
	// ses are the member's ServiceExports this federation exports (valid
	// or not), created their creationTimestamps, invalidBy the MCS Valid
	// reason and message of those that export nothing, and statusErr why
	// their conditions could not be recorded.
	ses       map[string]*mcsv1beta1.ServiceExport
	created   map[string]metav1.Time
	invalidBy map[string]invalidExport
	statusErr string
	// mi is the member's install of its mesh (nil when none).
	mi *meshv1alpha1.MeshInstall
	// endpoints says, per exported service (namespace/name), whether the
	// member has a ready endpoint of it.
	endpoints map[string]bool
	// imported are the services whose ServiceImport the member holds;
	// skipped says why a service is not imported; refused why a service's
	// mesh outputs are not written.
	imported         map[string]bool
	skipped, refused map[string]string
	// unsupported says why the member's mesh, as installed, cannot carry
	// a service's export (mesh.ServiceMarker); marks are the labels and
	// annotations its exports set on its own Services.
	unsupported map[string]string
	marks       []client.Object
}

func exportKey(ns, name string) string { return ns + "/" + name }

// invalidExport is why a ServiceExport exports nothing (MCS Valid=False).
type invalidExport struct{ reason, msg string }

// collectExports reads the ServiceExports of every member that federates
// services and answers, and returns the exported services of the cluster
// set, by namespace/name. It also records each member's install.
func (r *Reconciler) collectExports(ctx context.Context, fed *meshv1alpha1.MeshFederation, svcs []*svcMember) []mesh.ExportedService {
	for _, s := range svcs {
		if s.sf == nil || s.m.client == nil || s.m.unreachable {
			continue
		}
		se, err := r.Registry.ServiceExporter(s.m.spec.Provider)
		if err != nil {
			s.export.note = fmt.Sprintf("Meshplane does not translate service exports for %s", s.m.spec.Provider)
			continue
		}
		s.export.se = se
		s.export.mi = memberInstall(ctx, s)
		r.readExports(ctx, fed, s)
	}
	carryExports(ctx, fed, svcs)
	return aggregateExports(fed, svcs)
}

// carryExports keeps, for a member whose exports cannot be read now (it
// does not answer), the services it exported at the last reconcile, as the
// ServiceImports the other members hold describe them: a lost member
// changes nothing the others hold.
func carryExports(ctx context.Context, fed *meshv1alpha1.MeshFederation, svcs []*svcMember) {
	for _, s := range svcs {
		lost := s.sf != nil && (s.m.client == nil || s.m.unreachable || s.export.unknown != "")
		if !lost {
			continue
		}
		for _, e := range fed.Status.Exports {
			if !contains(e.ExportedBy, s.m.spec.Name) {
				continue
			}
			if svc := heldImport(ctx, fed, svcs, e.Namespace, e.Name); svc != nil {
				s.export.exports = append(s.export.exports, svc)
			}
		}
	}
}

// heldImport reads the ServiceImport the federation wrote for ns/name in a
// member that answers, as the Service it was made from.
func heldImport(ctx context.Context, fed *meshv1alpha1.MeshFederation, svcs []*svcMember, ns, name string) *corev1.Service {
	for _, s := range svcs {
		if s.sf == nil || s.m.client == nil || s.m.unreachable {
			continue
		}
		si := &mcsv1beta1.ServiceImport{}
		if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, si); err != nil || !owned(si, fed.Name) {
			continue
		}
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if si.Spec.Type == mcsv1beta1.Headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		}
		for _, p := range si.Spec.Ports {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port})
		}
		return svc
	}
	return nil
}

// memberInstall returns the member's MeshInstall of its provider, if any.
func memberInstall(ctx context.Context, s *svcMember) *meshv1alpha1.MeshInstall {
	installs, _ := s.meshInstalls(ctx)
	for i := range installs {
		if installs[i].Spec.Provider == s.m.spec.Provider {
			return &installs[i]
		}
	}
	return nil
}

// readExports lists the member's ServiceExports and reads the Service and
// ready endpoints of each.
func (r *Reconciler) readExports(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember) {
	name := s.m.spec.Name
	var list mcsv1beta1.ServiceExportList
	if err := s.m.client.List(ctx, &list); err != nil {
		if apimeta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			s.export.note = fmt.Sprintf("the Multi-Cluster Services CRDs (serviceexports and serviceimports.multicluster.x-k8s.io) are not installed in cluster %s: "+
				"install them (sigs.k8s.io/mcs-api config/crd) to export or import services there", name)
		} else {
			s.export.unknown = fmt.Sprintf("cluster %s: listing ServiceExports: %v", name, err)
		}
		return
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return exportKey(list.Items[i].Namespace, list.Items[i].Name) < exportKey(list.Items[j].Namespace, list.Items[j].Name)
	})
	x := &s.export
	x.endpoints, x.ses, x.created, x.invalidBy = map[string]bool{}, map[string]*mcsv1beta1.ServiceExport{}, map[string]metav1.Time{}, map[string]invalidExport{}
	for i := range list.Items {
		e := &list.Items[i]
		if f, ok := e.Labels[FederationLabel]; ok && f != fed.Name {
			continue
		}
		k := exportKey(e.Namespace, e.Name)
		x.ses[k] = e
		svc := &corev1.Service{}
		if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, svc); err != nil {
			msg := fmt.Sprintf("ServiceExport %s/%s in %s exports no Service (%s)", e.Namespace, e.Name, name, reason(err))
			x.invalid = append(x.invalid, msg)
			x.invalidBy[k] = invalidExport{string(mcsv1beta1.ServiceExportReasonNoService), msg}
			continue
		}
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			msg := fmt.Sprintf("ServiceExport %s/%s in %s exports Service %s/%s of type ExternalName, which the Multi-Cluster Services API does not export: delete the ServiceExport",
				e.Namespace, e.Name, name, e.Namespace, e.Name)
			x.invalid = append(x.invalid, msg)
			x.invalidBy[k] = invalidExport{string(mcsv1beta1.ServiceExportReasonInvalidServiceType), msg}
			continue
		}
		x.exports = append(x.exports, svc)
		x.created[k] = e.CreationTimestamp
		x.endpoints[k] = readyEndpoint(ctx, s.m.client, svc)
	}
}

func reason(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return err.Error()
}

// readyEndpoint reports whether the Service has a ready endpoint in the
// member's EndpointSlices.
func readyEndpoint(ctx context.Context, c client.Client, svc *corev1.Service) bool {
	var slices discoveryv1.EndpointSliceList
	if err := c.List(ctx, &slices, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return false
	}
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

// aggregateExports merges the members' exports by namespace/name; the
// exporters are listed in member order, and the ports and type of the
// oldest export (its ServiceExport's creationTimestamp, then the member's
// name) stand for the service, as the MCS API resolves a conflict (which
// is reported: exportConflicts).
func aggregateExports(fed *meshv1alpha1.MeshFederation, svcs []*svcMember) []mesh.ExportedService {
	byKey := map[string]*mesh.ExportedService{}
	oldest := map[string]exportEntry{}
	var keys []string
	for _, s := range svcs {
		for _, svc := range s.export.exports {
			k := exportKey(svc.Namespace, svc.Name)
			e, ok := byKey[k]
			if !ok {
				if len(keys) >= MaxExports {
					continue
				}
				e = &mesh.ExportedService{Namespace: svc.Namespace, Name: svc.Name, Failover: failover(fed)}
				byKey[k] = e
				keys = append(keys, k)
			}
			e.Exporters = append(e.Exporters, s.m.spec.Name)
			if cur := (exportEntry{member: s.m.spec.Name, created: s.export.created[k], svc: svc}); !ok || olderExport(cur, oldest[k]) {
				oldest[k] = cur
				e.Ports, e.Headless = svc.Spec.Ports, svc.Spec.ClusterIP == corev1.ClusterIPNone
			}
		}
	}
	sort.Strings(keys)
	out := make([]mesh.ExportedService, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}

func failover(fed *meshv1alpha1.MeshFederation) meshv1alpha1.ExportFailover {
	if s := fed.Spec.Services; s != nil && s.Failover != "" {
		return s.Failover
	}
	return meshv1alpha1.FailoverNone
}

// serviceImport is the MCS API's ServiceImport of an exported service.
func serviceImport(svc mesh.ExportedService) *mcsv1beta1.ServiceImport {
	si := &mcsv1beta1.ServiceImport{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcsv1beta1.GroupVersion.String(), Kind: mcsv1beta1.ServiceImportKindName},
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name},
		Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP},
	}
	if svc.Headless {
		si.Spec.Type = mcsv1beta1.Headless
	}
	for _, p := range svc.Ports {
		si.Spec.Ports = append(si.Spec.Ports, mcsv1beta1.ServicePort{Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port})
	}
	return si
}

// exportObjects are what member s holds for the exported services: a
// ServiceImport of each whose namespace exists in s, and the mesh's
// outputs for it unless an object the federation did not write already
// configures the same service. They are written with the member's other
// service-federation objects, in one apply that prunes the rest.
func (r *Reconciler) exportObjects(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, all []mesh.ExportedService, providers map[string]meshv1alpha1.Provider) []client.Object {
	x := &s.export
	if x.se == nil || x.note != "" {
		return nil
	}
	x.imported, x.skipped, x.refused, x.unsupported = map[string]bool{}, map[string]string{}, map[string]string{}, map[string]string{}
	x.marks = nil
	nsExists := map[string]string{}
	var out []client.Object
	for _, svc := range all {
		k := exportKey(svc.Namespace, svc.Name)
		if svc.Exporters = sameMesh(s, svc.Exporters, providers); len(svc.Exporters) == 0 {
			continue // exported only by members of another mesh
		}
		why, seen := nsExists[svc.Namespace]
		if !seen {
			why = namespaceMissing(ctx, s, svc.Namespace)
			nsExists[svc.Namespace] = why
		}
		if why != "" {
			x.skipped[k] = why
			continue
		}
		if why := foreignImport(ctx, fed, s, svc); why != "" {
			x.refused[k] = why
			continue
		}
		mark, refusal, conflict := serviceMarks(ctx, s, svc)
		if refusal != "" {
			x.unsupported[k] = s.m.spec.Name + ": " + refusal
			continue
		}
		if conflict != "" {
			x.refused[k] = conflict
			continue
		}
		if mark != nil {
			x.marks = append(x.marks, mark)
		}
		out = append(out, serviceImport(svc))
		x.imported[k] = true
		objs := x.se.ExportOutputs(s.fm, svc)
		if len(objs) == 0 {
			continue
		}
		if overlap := r.exportOverlap(ctx, fed, s, svc); overlap != "" {
			x.refused[k] = fmt.Sprintf("%s: %s", s.m.spec.Name, overlap)
			continue
		}
		out = append(out, objs...)
	}
	return out
}

// memberProviders maps each member to its mesh.
func memberProviders(svcs []*svcMember) map[string]meshv1alpha1.Provider {
	out := make(map[string]meshv1alpha1.Provider, len(svcs))
	for _, s := range svcs {
		out[s.m.spec.Name] = s.m.spec.Provider
	}
	return out
}

// sameMesh keeps the exporters whose mesh is member s's: members of two
// meshes share trust but not services.
func sameMesh(s *svcMember, exporters []string, providers map[string]meshv1alpha1.Provider) []string {
	out := make([]string, 0, len(exporters))
	for _, e := range exporters {
		if providers[e] == s.m.spec.Provider {
			out = append(out, e)
		}
	}
	return out
}

// foreignImport says why the member cannot hold the federation's
// ServiceImport of svc: one of that name exists and is not this
// federation's (another federation's, or an MCS implementation's).
func foreignImport(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, svc mesh.ExportedService) string {
	si := &mcsv1beta1.ServiceImport{}
	err := s.m.client.Get(ctx, client.ObjectKey{Namespace: svc.Namespace, Name: svc.Name}, si)
	switch {
	case apierrors.IsNotFound(err):
		return ""
	case err != nil:
		return fmt.Sprintf("%s: reading ServiceImport %s/%s: %v", s.m.spec.Name, svc.Namespace, svc.Name, err)
	case owned(si, fed.Name):
		return ""
	}
	by := "it was not created by Meshplane"
	if o := si.Labels[ownership.OwnerLabel]; ownership.IsManaged(si) && o != "" {
		by = "it belongs to " + o
	}
	return fmt.Sprintf("%s: ServiceImport %s/%s exists and %s: not imported by MeshFederation %s; "+
		"label the ServiceExport %s=<federation> to choose one federation, or remove that ServiceImport",
		s.m.spec.Name, svc.Namespace, svc.Name, by, fed.Name, FederationLabel)
}

// namespaceMissing says why a member cannot hold objects in ns (it does
// not exist there: the MCS API imports only where the namespace is).
func namespaceMissing(ctx context.Context, s *svcMember, ns string) string {
	err := s.m.client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
	switch {
	case err == nil:
		return ""
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("namespace %s does not exist in %s", ns, s.m.spec.Name)
	}
	return fmt.Sprintf("%s: reading namespace %s: %v", s.m.spec.Name, ns, err)
}

// exportOverlap asks the mesh whether an object the federation did not
// write already configures the exported service in s.
func (r *Reconciler) exportOverlap(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, svc mesh.ExportedService) string {
	var foreign []client.Object
	for _, l := range s.export.se.ExportOutputKinds() {
		if err := s.m.client.List(ctx, l, client.InNamespace(svc.Namespace)); err != nil {
			return fmt.Sprintf("listing %T in %s: %v", l, svc.Namespace, err)
		}
		items, err := apimeta.ExtractList(l)
		if err != nil {
			return err.Error()
		}
		for _, it := range items {
			if o, ok := it.(client.Object); ok && !ownership.IsOwnedBy(o, kind, "", fed.Name) {
				foreign = append(foreign, o)
			}
		}
	}
	for _, o := range s.export.se.ExportOutputs(s.fm, svc) {
		for _, f := range foreign {
			if f.GetName() == o.GetName() && f.GetNamespace() == o.GetNamespace() && sameKind(f, o) {
				return fmt.Sprintf("%s %s/%s exists and is not this federation's: remove or rename it", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName())
			}
		}
	}
	return s.export.se.ExportOverlap(svc, foreign)
}

func sameKind(a, b client.Object) bool { return fmt.Sprintf("%T", a) == fmt.Sprintf("%T", b) }

// exporters returns the members that export svc with a ready endpoint.
func withEndpoints(svcs []*svcMember, k string) []string {
	var out []string
	for _, s := range svcs {
		if s.export.endpoints[k] {
			out = append(out, s.m.spec.Name)
		}
	}
	slices.Sort(out)
	return out
}

// syncImportStatus records in the status of each ServiceImport member s
// holds which clusters export the service (status.clusters, as the MCS API
// defines it), patching only those that differ: a no-op reconcile writes
// nothing.
func (r *Reconciler) syncImportStatus(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, all []mesh.ExportedService, providers map[string]meshv1alpha1.Provider) {
	for _, svc := range all {
		k := exportKey(svc.Namespace, svc.Name)
		svc.Exporters = sameMesh(s, svc.Exporters, providers)
		if !s.export.imported[k] {
			continue
		}
		si := &mcsv1beta1.ServiceImport{}
		if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: svc.Namespace, Name: svc.Name}, si); err != nil {
			continue
		}
		want := make([]mcsv1beta1.ClusterStatus, 0, len(svc.Exporters))
		for _, e := range svc.Exporters {
			want = append(want, mcsv1beta1.ClusterStatus{Cluster: e})
		}
		if slices.Equal(si.Status.Clusters, want) {
			continue
		}
		orig := si.DeepCopy()
		si.Status.Clusters = want
		if err := s.m.client.Status().Patch(ctx, si, client.MergeFrom(orig)); err != nil {
			s.export.refused[k] = fmt.Sprintf("%s: recording the exporting clusters in ServiceImport %s/%s status: %v", s.m.spec.Name, svc.Namespace, svc.Name, err)
			continue
		}
		r.event(fed, corev1.EventTypeNormal, "ServiceImported", "Patch", "cluster %s: ServiceImport %s/%s status.clusters %v", s.m.spec.Name, svc.Namespace, svc.Name, svc.Exporters)
	}
}
