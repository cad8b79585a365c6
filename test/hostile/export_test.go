package hostile

import (
	"fmt"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Service export cases (ServiceExport of the Multi-Cluster Services API
// with MeshFederation spec.services): a one-member federation of the local
// cluster exports and imports in the case's own namespace. Every
// ServiceExport carries meshplane.io/federation naming the case's
// federation, so the federations of parallel cases never see it.

// exportFederation is a flat-network services federation of a fresh
// namespace with failover LocalFirst.
func exportFederation(h *H) (string, *meshv1alpha1.MeshFederation) {
	h.Helper()
	ns := h.Namespace(AnyMesh)
	f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
	f.Spec.Services.Failover = meshv1alpha1.FailoverLocalFirst
	return ns, f
}

// serviceExport is the ServiceExport of ns/name for federation fed.
func serviceExport(ns, name, fed string) *mcsv1beta1.ServiceExport {
	return &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{"meshplane.io/federation": fed}}}
}

// exportedService creates Service ns/name with a ready endpoint and its
// ServiceExport for fed.
func exportedService(h *H, ns, name, fed string) {
	h.Helper()
	h.Service(ns, name)
	ready := true
	h.Create(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}})
	h.Create(serviceExport(ns, name, fed))
}

// exportOutputs lists what fed's export holds in ns: "Kind/name".
func exportOutputs(h *H, f *meshv1alpha1.MeshFederation, ns string) string {
	h.Helper()
	sel := client.MatchingLabels{"meshplane.io/owner": "meshfederation.." + f.Name}
	var out []string
	var sis mcsv1beta1.ServiceImportList
	h.Must(h.C.List(h.Ctx, &sis, sel, client.InNamespace(ns)))
	for _, s := range sis.Items {
		out = append(out, "ServiceImport/"+s.Name)
	}
	var drs istionetworking.DestinationRuleList
	h.Must(h.C.List(h.Ctx, &drs, sel, client.InNamespace(ns)))
	for _, d := range drs.Items {
		out = append(out, "DestinationRule/"+d.Name)
	}
	return strings.Join(out, " ")
}

// waitExports waits until fed's export holds want in ns.
func waitExports(h *H, f *meshv1alpha1.MeshFederation, ns, want string) {
	h.Helper()
	h.Eventually("export outputs "+want, func() error {
		if got := exportOutputs(h, f, ns); got != want {
			return testenv.Errorf("holds %q, want %q", got, want)
		}
		return nil
	})
}

func init() {
	registerExportSpecCases()
	registerExportConflictCases()
	registerExportLifecycleCases()
}

func registerExportSpecCases() {
	Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: AnyMesh, Name: "export: failover Sideways",
		Run: func(h *H) {
			_, f := exportFederation(h)
			f.Spec.Services.Failover = "Sideways"
			h.Refused(f, "spec.services.failover", `Unsupported value: "Sideways"`, `"None", "LocalFirst"`)
		}})
	Register(Case{Category: "missing-ref", Kind: "MeshFederation", Mesh: Istio, Name: "export: ServiceExport without a Service",
		Run: func(h *H) {
			ns, f := exportFederation(h)
			h.Create(serviceExport(ns, "ghost", f.Name))
			h.Create(f)
			want := fmt.Sprintf("ServiceExport %s/ghost in local exports no Service (not found)", ns)
			c := h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ReferenceNotFoundReason, want)
			if c.Message != want {
				h.Fatalf("message %q, want %q", c.Message, want)
			}
			h.Ready(f)
			if got := exportOutputs(h, f, ns); got != "" {
				h.Fatalf("export wrote %q", got)
			}
			if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "ghost"}, &mcsv1beta1.ServiceImport{}); !apierrors.IsNotFound(err) {
				h.Fatalf("ServiceImport of a missing Service: %v", err)
			}
			controlServices(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}

// registerExportConflictCases: objects the export would write or merge
// with exist and are not the federation's.
func registerExportConflictCases() {
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Istio, Name: "export: foreign ServiceImport of the exported name",
		Run: func(h *H) {
			ns, f := exportFederation(h)
			exportedService(h, ns, "cart", f.Name)
			foreign := &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart"},
				Spec: mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 9999, Protocol: "TCP"}}}}
			h.Create(foreign)
			snap := h.Snapshot(foreign)
			h.Create(f)
			want := fmt.Sprintf("%[1]s/cart: local: ServiceImport %[1]s/cart exists and it was not created by Meshplane: not imported by MeshFederation %[2]s; "+
				"label the ServiceExport meshplane.io/federation=<federation> to choose one federation, or remove that ServiceImport", ns, f.Name)
			c := h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ConflictReason, want)
			if !strings.HasPrefix(c.Message, want) {
				h.Fatalf("message %q", c.Message)
			}
			// Neither the import nor the failover rule of a service it
			// cannot import.
			if got := exportOutputs(h, f, ns); got != "" {
				h.Fatalf("export wrote %q", got)
			}
			h.Unchanged(snap)
			h.Ready(f)
			controlServices(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
	for _, tc := range []struct {
		name, drName, host string
		want               string
	}{
		{"foreign DestinationRule on the host (short name)", "cart-resilience", "cart",
			"%[1]s/cart: local: DestinationRule %[1]s/cart-resilience already configures host cart; failover LocalFirst needs its own trafficPolicy " +
				"(loadBalancer.localityLbSetting and outlierDetection): add them to that rule, or remove it"},
		{"foreign DestinationRule on the host (full name)", "mine", "cart.%[1]s.svc.cluster.local",
			"%[1]s/cart: local: DestinationRule %[1]s/mine already configures host cart.%[1]s.svc.cluster.local; failover LocalFirst needs its own trafficPolicy"},
		{"foreign DestinationRule of the failover rule's name", "cart-meshplane-failover", "other",
			"%[1]s/cart: local: DestinationRule %[1]s/cart-meshplane-failover exists and is not this federation's: remove or rename it"},
	} {
		Register(Case{Category: "overlap", Kind: "MeshFederation", Mesh: Istio, Name: "export: " + tc.name,
			Run: func(h *H) {
				ns, f := exportFederation(h)
				exportedService(h, ns, "cart", f.Name)
				foreign := &istionetworking.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.drName},
					Spec: networkingv1alpha3.DestinationRule{Host: strings.ReplaceAll(tc.host, "%[1]s", ns)}}
				h.Create(foreign)
				snap := h.Snapshot(foreign)
				h.Create(f)
				h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ConflictReason, fmt.Sprintf(tc.want, ns))
				// The service is imported; its failover is refused, not half
				// written.
				waitExports(h, f, ns, "ServiceImport/cart")
				h.Unchanged(snap)
				h.Ready(f)
				// The foreign rule goes: the failover rule is written.
				h.Must(h.C.Delete(h.Ctx, foreign))
				waitExports(h, f, ns, "ServiceImport/cart DestinationRule/cart-meshplane-failover")
				controlServices(h)
				h.Must(h.C.Delete(h.Ctx, f))
			}})
	}
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Istio, Name: "export: ServiceExport labelled for another federation",
		Run: func(h *H) {
			ns, f := exportFederation(h)
			exportedService(h, ns, "cart", "someone-else")
			h.Create(f)
			h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
				"no service is exported: create a ServiceExport (multicluster.x-k8s.io) next to a Service in a member")
			h.Ready(f)
			if got := exportOutputs(h, f, ns); got != "" {
				h.Fatalf("export wrote %q", got)
			}
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}

// registerExportLifecycleCases: un-export and drift.
func registerExportLifecycleCases() {
	Register(Case{Category: "deletion", Kind: "MeshFederation", Mesh: Istio, Name: "export: un-export removes exactly the import and the failover rule",
		Run: func(h *H) {
			ns, f := exportFederation(h)
			exportedService(h, ns, "cart", f.Name)
			svc := &corev1.Service{}
			h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "cart"}, svc))
			snap := h.Snapshot(svc)
			h.Create(f)
			waitExports(h, f, ns, "ServiceImport/cart DestinationRule/cart-meshplane-failover")
			before, _ := servicesOutputs(h, f, ns)
			// The watch on ServiceExports wakes the federation.
			h.Must(h.C.Delete(h.Ctx, serviceExport(ns, "cart", f.Name)))
			waitExports(h, f, ns, "")
			after, _ := servicesOutputs(h, f, ns)
			if sortedJoin(before) != sortedJoin(after) {
				h.Fatalf("un-export moved service federation's objects: %v -> %v", before, after)
			}
			h.Unchanged(snap)
			h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "no service is exported")
			h.Ready(f)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
	Register(Case{Category: "drift", Kind: "MeshFederation", Mesh: Istio, Name: "export: a deleted ServiceImport is restored by the watch",
		Run: func(h *H) {
			ns, f := exportFederation(h)
			exportedService(h, ns, "cart", f.Name)
			h.Create(f)
			waitExports(h, f, ns, "ServiceImport/cart DestinationRule/cart-meshplane-failover")
			h.Must(h.C.Delete(h.Ctx, &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart"}}))
			h.Must(h.C.Delete(h.Ctx, &istionetworking.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart-meshplane-failover"}}))
			waitExports(h, f, ns, "ServiceImport/cart DestinationRule/cart-meshplane-failover")
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}
