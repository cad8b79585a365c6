package meshfederation_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// setupExports is the service federation fixture of services_test.go with
// the Multi-Cluster Services CRDs in every member and the export RBAC
// granted to the remote identity of east.
func setupExports(t *testing.T) *svcEnv {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.MCS}}})
	reg := providers.Registry()
	iw, _ := reg.FederationTrust(meshv1alpha1.ProviderIstio)
	lw, _ := reg.FederationTrust(meshv1alpha1.ProviderLinkerd)
	sf, _ := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	se, _ := reg.ServiceExporter(meshv1alpha1.ProviderIstio)
	e := &svcEnv{localCfg: multi.Servers[0]}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	mustCreate(t, e.local, ns(opNS), ns("istio-system"), ns("shop"))
	mustCreate(t, e.east, ns("istio-system"), ns("shop"))
	mustCreate(t, e.west, ns("linkerd"), ns("shop"))
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	westProxy := newProxy(t, hostPort(t, multi.Servers[2].Config))
	eastKC := remoteKubeconfig(t, multi.Servers[1].Config, iw, e.eastProxy.addr)
	mustCreate(t, e.east, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "east"}, []string{"local", "west"},
		"meshplane-remote", "meshplane-federation")...)
	mustCreate(t, e.east, meshfederation.RemoteExportRBAC(se, "meshplane-remote", "meshplane-federation")...)
	westKC := remoteKubeconfig(t, multi.Servers[2].Config, lw, westProxy.addr)
	mustCreate(t, e.local,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "east-kubeconfig"}, Data: map[string][]byte{"kubeconfig": eastKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}})
	e.members = map[string]client.Client{"local": e.local, "east": e.east, "west": e.west}
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

// exportedService creates Service shop/cart with one ready endpoint and
// its ServiceExport in c.
func exportedService(t *testing.T, c client.Client) {
	t.Helper()
	mustCreate(t, c,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}, Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-1", Labels: map[string]string{discoveryv1.LabelServiceName: "cart"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}}},
		&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}})
}

// exportsOf lists what the federation's export wrote in a member.
func exportsOf(t *testing.T, c client.Client) []string {
	t.Helper()
	ctx := context.Background()
	sel := client.MatchingLabels{ownership.OwnerLabel: "meshfederation..mesh"}
	var out []string
	var sis mcsv1beta1.ServiceImportList
	var drs istionetworking.DestinationRuleList
	for _, l := range []client.ObjectList{&sis, &drs} {
		if err := c.List(ctx, l, sel); err != nil && !apimeta.IsNoMatchError(err) {
			t.Fatal(err)
		}
	}
	for _, s := range sis.Items {
		out = append(out, "ServiceImport/"+s.Namespace+"/"+s.Name)
	}
	for _, d := range drs.Items {
		out = append(out, "DestinationRule/"+d.Namespace+"/"+d.Name)
	}
	return out
}

func exportStatusOf(f *meshv1alpha1.MeshFederation, name string) *meshv1alpha1.ExportedServiceStatus {
	for i := range f.Status.Exports {
		if f.Status.Exports[i].Namespace+"/"+f.Status.Exports[i].Name == name {
			return &f.Status.Exports[i]
		}
	}
	return nil
}

const cartFailover = "DestinationRule/shop/cart-meshplane-failover"

// TestServiceExport exports a Service of east through the Multi-Cluster
// Services API over three real API servers and follows the ServiceImports
// and failover rules it produces on every Istio member (none on the
// Linkerd one), the status per exported service, the scope and topology
// checks, a foreign DestinationRule, no-op reconciles, a lost exporter and
// the un-export.
func TestServiceExport(t *testing.T) {
	e := setupExports(t)
	ctx := context.Background()
	f := servicesFederation("mesh")
	f.Spec.Services.Failover = meshv1alpha1.FailoverLocalFirst
	mustCreate(t, e.local, f)
	exportedService(t, e.east)
	setGatewayAddress(t, e.local, "127.96.1.1")
	setGatewayAddress(t, e.east, "127.96.1.2")

	t.Run("the export lands on every Istio member", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "imports on both Istio members", func() error {
			for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
				if got := strings.Join(exportsOf(t, c), " "); got != "ServiceImport/shop/cart "+cartFailover {
					return testenv.Errorf("%s holds %q", name, got)
				}
			}
			return nil
		})
		si := &mcsv1beta1.ServiceImport{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, si); err != nil {
			t.Fatal(err)
		}
		if si.Spec.Type != mcsv1beta1.ClusterSetIP || len(si.Spec.Ports) != 1 || si.Spec.Ports[0].Port != 8080 || si.Spec.Ports[0].Name != "http" {
			t.Fatalf("ServiceImport spec %+v", si.Spec)
		}
		testenv.Eventually(t, 20*time.Second, "ServiceImport status.clusters", func() error {
			for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
				si := &mcsv1beta1.ServiceImport{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, si); err != nil {
					return err
				}
				if len(si.Status.Clusters) != 1 || si.Status.Clusters[0].Cluster != "east" {
					return testenv.Errorf("%s: status.clusters %+v", name, si.Status.Clusters)
				}
			}
			return nil
		})
		dr := &istionetworking.DestinationRule{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart-meshplane-failover"}, dr); err != nil {
			t.Fatal(err)
		}
		tp := dr.Spec.TrafficPolicy
		if dr.Spec.Host != "cart.shop.svc.cluster.local" || tp == nil || !tp.GetLoadBalancer().GetLocalityLbSetting().GetEnabled().GetValue() ||
			tp.GetOutlierDetection().GetConsecutive_5XxErrors().GetValue() != 5 {
			t.Fatalf("failover rule %+v", &dr.Spec)
		}
		if got := exportsOf(t, e.west); len(got) != 0 {
			t.Fatalf("west (Linkerd) holds %v", got)
		}
		if err := e.west.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, &mcsv1beta1.ServiceImport{}); !apierrors.IsNotFound(err) {
			t.Fatalf("west got a ServiceImport: %v", err)
		}
	})

	t.Run("status says who exports, who imports, and that the scope is not enforced", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "export status", func() error {
			f := e.get(t, "mesh")
			es := exportStatusOf(f, "shop/cart")
			if es == nil {
				return testenv.Errorf("no export status: %+v", f.Status.Exports)
			}
			if strings.Join(es.ExportedBy, ",") != "east" || strings.Join(es.ImportedBy, ",") != "local,east" || !es.Reachable ||
				strings.Join(es.GatewayAddresses, ",") != "east=127.96.1.2" || es.Type != "ClusterSetIP" || es.Ready {
				return testenv.Errorf("export %+v", es)
			}
			if es.Scope != "east: global; services without a ServiceExport are global too (Istio multi-primary default)" {
				return testenv.Errorf("scope %q", es.Scope)
			}
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesExportedCondition)
			want := `shop/cart: east: global; services without a ServiceExport are global too (Istio multi-primary default); set the istiod values of the cluster's control plane to ` +
				`{"meshConfig":{"serviceSettings":[{"hosts":["*"],"settings":{"clusterLocal":true}},{"hosts":["cart.shop.svc.cluster.local"],"settings":{"clusterLocal":false}}]}}`
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ScopeNotEnforcedReason || c.Message != want {
				return testenv.Errorf("ServicesExported %+v", c)
			}
			if c := memberCondition(f, "east", meshv1alpha1.TopologyConfiguredCondition); c == nil || c.Status != metav1.ConditionUnknown ||
				c.Message != "no MeshInstall installs Istio here: make sure istiod runs with global.meshID=mesh1, global.multiCluster.clusterName=east and global.network=net-east" {
				return testenv.Errorf("east TopologyConfigured %+v", c)
			}
			if r := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ReadyCondition); r == nil || r.Status != metav1.ConditionTrue {
				return testenv.Errorf("Ready %+v", r)
			}
			return nil
		})
	})

	t.Run("an install with the topology and scope values makes the export ready", func(t *testing.T) {
		vals, _ := json.Marshal(map[string]any{"meshConfig": map[string]any{"serviceSettings": []any{
			map[string]any{"settings": map[string]any{"clusterLocal": true}, "hosts": []string{"*"}},
			map[string]any{"settings": map[string]any{"clusterLocal": false}, "hosts": []string{"cart.shop.svc.cluster.local"}},
		}}})
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{
			Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Istio:      &meshv1alpha1.IstioInstallSpec{MeshID: "mesh1", ClusterName: "east", Network: "wrong"},
			Components: []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: apiextensionsv1.JSON{Raw: vals}}}}}
		mustCreate(t, e.east, mi)
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-install"}})
		testenv.Eventually(t, 30*time.Second, "topology mismatch named", func() error {
			f := e.get(t, "mesh")
			c := memberCondition(f, "east", meshv1alpha1.TopologyConfiguredCondition)
			want := `MeshInstall istio: spec.istio.network is "wrong", not "net-east"; set spec.istio {meshID: mesh1, clusterName: east, network: net-east} (and no other value in spec.values or the istiod component)`
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.TopologyMismatchReason || c.Message != want {
				return testenv.Errorf("east TopologyConfigured %+v", c)
			}
			if es := exportStatusOf(f, "shop/cart"); es == nil || !es.Ready || es.Scope != "east: global; services without a ServiceExport stay cluster-local" {
				return testenv.Errorf("export %+v", es)
			}
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesExportedCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesExported %+v", c)
			}
			return nil
		})
		mi = &meshv1alpha1.MeshInstall{}
		if err := e.east.Get(ctx, client.ObjectKey{Name: "istio"}, mi); err != nil {
			t.Fatal(err)
		}
		mi.Spec.Istio.Network = "net-east"
		if err := e.east.Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-install-2"}})
		testenv.Eventually(t, 30*time.Second, "topology configured", func() error {
			if c := memberCondition(e.get(t, "mesh"), "east", meshv1alpha1.TopologyConfiguredCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("east TopologyConfigured %+v", c)
			}
			return nil
		})
	})

	t.Run("a foreign DestinationRule on the host refuses the failover there only", func(t *testing.T) {
		foreign := &istionetworking.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-resilience"},
			Spec: networkingv1alpha3.DestinationRule{Host: "cart"}}
		mustCreate(t, e.local, foreign)
		rv := foreign.ResourceVersion
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-dr"}})
		testenv.Eventually(t, 30*time.Second, "failover refused on local", func() error {
			f := e.get(t, "mesh")
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesExportedCondition)
			want := "shop/cart: local: DestinationRule shop/cart-resilience already configures host cart; failover LocalFirst needs its own trafficPolicy " +
				"(loadBalancer.localityLbSetting and outlierDetection): add them to that rule, or remove it"
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ConflictReason || c.Message != want {
				return testenv.Errorf("ServicesExported %+v", c)
			}
			if got := strings.Join(exportsOf(t, e.local), " "); got != "ServiceImport/shop/cart" {
				return testenv.Errorf("local holds %q", got)
			}
			return nil
		})
		if got := strings.Join(exportsOf(t, e.east), " "); got != "ServiceImport/shop/cart "+cartFailover {
			t.Fatalf("east holds %q", got)
		}
		got := &istionetworking.DestinationRule{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart-resilience"}, got); err != nil || got.ResourceVersion != rv {
			t.Fatalf("foreign rule touched: %v %s -> %s", err, rv, got.ResourceVersion)
		}
		if err := e.local.Delete(ctx, foreign); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-dr-2"}})
		testenv.Eventually(t, 30*time.Second, "failover back on local", func() error {
			if got := strings.Join(exportsOf(t, e.local), " "); got != "ServiceImport/shop/cart "+cartFailover {
				return testenv.Errorf("local holds %q", got)
			}
			return nil
		})
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "export ready", func() error {
			if es := exportStatusOf(e.get(t, "mesh"), "shop/cart"); es == nil || !es.Ready {
				return testenv.Errorf("export %+v", es)
			}
			return nil
		})
		var remotes []*testenv.Writes
		wrap := func(c client.Client) client.Client {
			wc, w := testenv.CountWrites(noWatch{c})
			remotes = append(remotes, w)
			return wc
		}
		local, err := client.NewWithWatch(e.localCfg.Config, client.Options{Scheme: scheme.New()})
		if err != nil {
			t.Fatal(err)
		}
		cl, writes := testenv.CountWrites(local)
		r := &meshfederation.Reconciler{Client: cl, Local: cl, LocalConfig: e.localCfg.Config, Registry: providers.Registry(),
			Remote: &remote.Cache{Scheme: scheme.New(), Wrap: wrap}, OperatorNamespace: opNS}
		for range 3 {
			// A second apart: a condition removed and set again would move
			// its lastTransitionTime.
			time.Sleep(time.Second)
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "mesh"}}); err != nil {
				t.Fatal(err)
			}
		}
		n, log := writes.Count(), writes.Log()
		for _, w := range remotes {
			n, log = n+w.Count(), append(log, w.Log()...)
		}
		if n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, log)
		}
	})

	t.Run("a lost exporter changes nothing the others hold", func(t *testing.T) {
		before := &mcsv1beta1.ServiceImport{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, before); err != nil {
			t.Fatal(err)
		}
		e.eastProxy.cut()
		restarted := false
		defer func() {
			if !restarted {
				_ = e.eastProxy.start()
			}
		}()
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-lost"}})
		testenv.Eventually(t, 30*time.Second, "east reported lost", func() error {
			f := e.get(t, "mesh")
			if p := peer(memberSvc(f, "local"), "east"); p.Linked {
				return testenv.Errorf("local -> east still linked")
			}
			if es := exportStatusOf(f, "shop/cart"); es == nil || strings.Join(es.ExportedBy, ",") != "east" || es.Ready {
				return testenv.Errorf("export while east is lost %+v", es)
			}
			return nil
		})
		after := &mcsv1beta1.ServiceImport{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, after); err != nil || after.ResourceVersion != before.ResourceVersion {
			t.Fatalf("local's ServiceImport changed while east is lost: %v", err)
		}
		if got := strings.Join(exportsOf(t, e.local), " "); got != "ServiceImport/shop/cart "+cartFailover {
			t.Fatalf("local holds %q", got)
		}
		restarted = true
		if err := e.eastProxy.start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "east back", func() error {
			if p := peer(memberSvc(e.get(t, "mesh"), "local"), "east"); !p.Linked {
				return testenv.Errorf("local -> east %+v", p)
			}
			return nil
		})
	})

	t.Run("un-exporting removes exactly what the export wrote", func(t *testing.T) {
		if err := e.east.Delete(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}}); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-unexport"}})
		testenv.Eventually(t, 30*time.Second, "imports removed", func() error {
			for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
				if got := exportsOf(t, c); len(got) != 0 {
					return testenv.Errorf("%s holds %v", name, got)
				}
			}
			f := e.get(t, "mesh")
			if len(f.Status.Exports) != 0 {
				return testenv.Errorf("status keeps %+v", f.Status.Exports)
			}
			return nil
		})
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			if got := objectsOf(t, c); len(got) != 6 {
				t.Fatalf("%s lost its links: %v", name, got)
			}
		}
		if err := e.east.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, &corev1.Service{}); err != nil {
			t.Fatalf("the exported Service is gone: %v", err)
		}
	})
}
