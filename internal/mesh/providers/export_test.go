package providers

import (
	"os"
	"path/filepath"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

var cart = mesh.ExportedService{Namespace: "shop", Name: "cart", Exporters: []string{"east"}, Failover: meshv1alpha1.FailoverLocalFirst}

func istioExporter(t *testing.T) mesh.ServiceExporter {
	t.Helper()
	se, err := Registry().ServiceExporter(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	return se
}

// TestServiceExportGolden pins the Istio outputs of an exported service:
// a LocalFirst failover DestinationRule, nothing without failover.
func TestServiceExportGolden(t *testing.T) {
	se := istioExporter(t)
	m := mesh.FederationMember{Name: "local", Network: "local", MeshID: "mesh1"}
	none := cart
	none.Failover = meshv1alpha1.FailoverNone
	if objs := se.ExportOutputs(m, none); len(objs) != 0 {
		t.Fatalf("failover None writes %d objects", len(objs))
	}
	name := "export-failover-localfirst.istio"
	got := render(t, translation{golden: name, objs: se.ExportOutputs(m, cart)})
	path := filepath.Join("testdata", name+".golden.yaml")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
	}
}

// TestServiceExportOverlap: a DestinationRule of the service's host in any
// of its spellings overlaps; another host, another namespace's short name
// or a rule bound to workloads does not.
func TestServiceExportOverlap(t *testing.T) {
	se := istioExporter(t)
	dr := func(ns, host string, sel bool) client.Object {
		d := &istionetworking.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Spec: networkingv1alpha3.DestinationRule{Host: host}}
		if sel {
			d.Spec.WorkloadSelector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "x"}}
		}
		return d
	}
	for _, tc := range []struct {
		obj     client.Object
		overlap bool
	}{
		{dr("shop", "cart", false), true},
		{dr("shop", "cart.shop", false), true},
		{dr("shop", "cart.shop.svc", false), true},
		{dr("other", "cart.shop.svc.cluster.local", false), true},
		{dr("other", "cart", false), false},
		{dr("shop", "orders", false), false},
		{dr("shop", "cart", true), false},
	} {
		d := tc.obj.(*istionetworking.DestinationRule)
		if got := se.ExportOverlap(cart, []client.Object{tc.obj}) != ""; got != tc.overlap {
			t.Errorf("%s/%s host %q: overlap %v, want %v", d.Namespace, d.Name, d.Spec.Host, got, tc.overlap)
		}
	}
}

func install(values, istiod string, is *meshv1alpha1.IstioInstallSpec) *meshv1alpha1.MeshInstall {
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Istio: is}}
	if values != "" {
		mi.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(values)}
	}
	if istiod != "" {
		mi.Spec.Components = []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: apiextensionsv1.JSON{Raw: []byte(istiod)}}}
	}
	return mi
}

// TestServiceExportScope evaluates meshConfig.serviceSettings as istiod
// does (most specific host wins).
func TestServiceExportScope(t *testing.T) {
	se := istioExporter(t)
	exported := []mesh.ExportedService{cart}
	fix := `{"meshConfig":{"serviceSettings":[{"hosts":["*"],"settings":{"clusterLocal":true}},{"hosts":["cart.shop.svc.cluster.local"],"settings":{"clusterLocal":false}}]}}`
	for _, tc := range []struct {
		name      string
		mi        *meshv1alpha1.MeshInstall
		enforced  bool
		effective string
		fix       string
	}{
		{"no install", nil, false, "global; services without a ServiceExport are global too (Istio multi-primary default)",
			"set the istiod values of the cluster's control plane to " + fix},
		{"no settings", install("", "", nil), false, "global; services without a ServiceExport are global too (Istio multi-primary default)",
			"set MeshInstall istio spec.components[chart=istiod].values to " + fix},
		{"catch-all local, export global", install("", `{"meshConfig":{"serviceSettings":[{"settings":{"clusterLocal":true},"hosts":["*"]},{"settings":{"clusterLocal":false},"hosts":["cart.shop.svc.cluster.local"]}]}}`, nil),
			true, "global; services without a ServiceExport stay cluster-local", ""},
		{"in spec.values", install(`{"meshConfig":{"serviceSettings":[{"settings":{"clusterLocal":true},"hosts":["*"]},{"settings":{"clusterLocal":false},"hosts":["cart.shop.svc.cluster.local"]}]}}`, "", nil),
			true, "global; services without a ServiceExport stay cluster-local", ""},
		{"namespace kept local", install("", `{"meshConfig":{"serviceSettings":[{"settings":{"clusterLocal":true},"hosts":["*.shop.svc.cluster.local"]}]}}`, nil),
			false, "cluster-local: meshConfig.serviceSettings keeps cart.shop.svc.cluster.local local, so its export has no effect",
			"set MeshInstall istio spec.components[chart=istiod].values to " + fix},
		{"another namespace global", install("", `{"meshConfig":{"serviceSettings":[{"settings":{"clusterLocal":true},"hosts":["*"]},{"settings":{"clusterLocal":false},"hosts":["*.shop.svc.cluster.local"]}]}}`, nil),
			false, "global; services without a ServiceExport are global too (Istio multi-primary default)",
			"set MeshInstall istio spec.components[chart=istiod].values to " + fix},
		{"istiod component overrides spec.values", install(`{"meshConfig":{"serviceSettings":[{"settings":{"clusterLocal":true},"hosts":["*"]},{"settings":{"clusterLocal":false},"hosts":["cart.shop.svc.cluster.local"]}]}}`,
			`{"meshConfig":{"serviceSettings":[]}}`, nil),
			false, "global; services without a ServiceExport are global too (Istio multi-primary default)",
			"set MeshInstall istio spec.components[chart=istiod].values to " + fix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := se.ExportScope(tc.mi, exported, cart)
			if got.Enforced != tc.enforced || got.Effective != tc.effective || got.Fix != tc.fix {
				t.Fatalf("scope %+v\nwant enforced=%v effective=%q fix=%q", got, tc.enforced, tc.effective, tc.fix)
			}
		})
	}
}

// TestServiceExportTopology compares the install's mesh ID, cluster name
// and network with the member's, values over spec.istio.
func TestServiceExportTopology(t *testing.T) {
	se := istioExporter(t)
	m := mesh.FederationMember{Name: "east", Network: "net-east", MeshID: "mesh1"}
	ok := &meshv1alpha1.IstioInstallSpec{MeshID: "mesh1", ClusterName: "east", Network: "net-east"}
	for _, tc := range []struct {
		name string
		mi   *meshv1alpha1.MeshInstall
		want string
	}{
		{"no install", nil, "no MeshInstall installs Istio here: make sure istiod runs with global.meshID=mesh1, global.multiCluster.clusterName=east and global.network=net-east"},
		{"spec.istio", install("", "", ok), ""},
		{"nothing set", install("", "", nil), `MeshInstall istio: spec.istio.meshID is "", not "mesh1", spec.istio.clusterName is "", not "east", spec.istio.network is "", not "net-east"; ` +
			"set spec.istio {meshID: mesh1, clusterName: east, network: net-east} (and no other value in spec.values or the istiod component)"},
		{"values override", install(`{"global":{"network":"other"}}`, `{"global":{"multiCluster":{"clusterName":"east"}}}`, ok),
			`MeshInstall istio: values global.network is "other", not "net-east"; set spec.istio {meshID: mesh1, clusterName: east, network: net-east} (and no other value in spec.values or the istiod component)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := se.TopologyCheck(tc.mi, m); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
