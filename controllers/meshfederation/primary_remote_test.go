package meshfederation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// userIstiod is a component of the members' MeshInstalls that the user
// set: it stays through every change of the federation's settings.
const userIstiod = `{"chart":"istiod","values":{"pilot":{"resources":{"cpu":"1"}}}}`

// setupPrimaryRemote is three Istio sidecar members (1.28.1): local, east
// (the primary of west) and west (a remote), east and west reached through
// kubeconfigs bound to RemoteRBAC and the primary-remote
// RemoteServicesRBAC only.
func setupPrimaryRemote(t *testing.T) *svcEnv {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio}}})
	reg := providers.Registry()
	iw, _ := reg.FederationTrust(meshv1alpha1.ProviderIstio)
	sf, _ := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	e := &svcEnv{localCfg: multi.Servers[0]}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	sidecar := func() *meshv1alpha1.MeshInstall {
		return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
				Components: []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: jsonOf(map[string]any{"pilot": map[string]any{"resources": map[string]any{"cpu": "1"}}})}}}}
	}
	mustCreate(t, e.local, ns(opNS), ns("istio-system"), sidecar())
	mustCreate(t, e.east, ns("istio-system"), sidecar())
	mustCreate(t, e.west, ns("istio-system"), sidecar())
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	westProxy := newProxy(t, hostPort(t, multi.Servers[2].Config))
	eastKC := remoteKubeconfig(t, multi.Servers[1].Config, iw, e.eastProxy.addr)
	mustCreate(t, e.east, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "east", Remotes: []string{"west"}}, []string{"local", "west"},
		"meshplane-remote", "meshplane-federation")...)
	westKC := remoteKubeconfig(t, multi.Servers[2].Config, iw, westProxy.addr)
	mustCreate(t, e.west, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "west", Primary: "east"}, []string{"local", "east"},
		"meshplane-remote", "meshplane-federation")...)
	mustCreate(t, e.local,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "east-kubeconfig"}, Data: map[string][]byte{"kubeconfig": eastKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}})
	e.members = map[string]client.Client{"local": e.local, "east": e.east, "west": e.west}
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

// primaryRemoteFederation federates local, east and west (all Istio, each
// on a network of its own), west a remote of east.
func primaryRemoteFederation() *meshv1alpha1.MeshFederation {
	f := federation("mesh")
	f.Spec.Clusters[2].Provider = meshv1alpha1.ProviderIstio
	f.Spec.Clusters[2].Primary = "east"
	f.Spec.Clusters[1].Network = "net-east"
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{MeshID: "mesh1"}
	return f
}

// primaryObjectsOf lists what the federation created in a member:
// objectsOf and its VirtualServices.
func primaryObjectsOf(t *testing.T, c client.Client) string {
	t.Helper()
	out := objectsOf(t, c)
	var vss istionetworking.VirtualServiceList
	if err := c.List(context.Background(), &vss, client.MatchingLabels{ownership.OwnerLabel: "meshfederation..mesh"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range vss.Items {
		out = append(out, "VirtualService/"+v.Name)
	}
	return strings.Join(out, " ")
}

const (
	eastWest     = "ServiceAccount/istio-eastwestgateway ServiceAccount/meshplane-istio-reader Service/istio-eastwestgateway Deployment/istio-eastwestgateway Gateway/cross-network-gateway"
	primaryHolds = "Secret/istio-remote-secret-local Secret/istio-remote-secret-west " + eastWest + " Gateway/istiod-gateway VirtualService/istiod-vs"
)

// TestPrimaryRemoteFederation configures Istio primary-remote over three
// real API servers: the primary (east) holds the remote's remote secret
// and exposes istiod through its east-west gateway; the remote (west)
// holds no remote secret, waits (saying so) for the primary's gateway
// address and then gets the remote profile settings in its MeshInstall;
// the multi-primary member (local) reads both; the reader's token reads
// and does nothing more; a no-op reconcile writes nothing; removing
// primary makes west a primary of its own and restores its MeshInstall;
// deleting the federation removes exactly what it created.
func TestPrimaryRemoteFederation(t *testing.T) {
	e := setupPrimaryRemote(t)
	ctx := context.Background()
	mustCreate(t, e.local, primaryRemoteFederation())

	t.Run("the primary exposes istiod and reads its remote; the remote waits for the primary's address", func(t *testing.T) {
		want := "west is not controlled by its primary east yet: waiting for an address of the east-west gateway of primary east " +
			"(Service istio-system/istio-eastwestgateway has no load-balancer ingress), through which west reaches its control plane"
		testenv.Eventually(t, 30*time.Second, "objects and west waiting", func() error {
			f := e.get(t, "mesh")
			if c := memberCondition(f, "west", meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.WaitingReason || !strings.HasPrefix(c.Message, want+"; ") {
				return testenv.Errorf("west ServicesConnected %+v", c)
			}
			if got := primaryObjectsOf(t, e.east); got != primaryHolds {
				return testenv.Errorf("east holds %s", got)
			}
			return nil
		})
		if got := primaryObjectsOf(t, e.west); got != eastWest {
			t.Fatalf("west (a remote) holds %s, want %s", got, eastWest)
		}
		if got := primaryObjectsOf(t, e.local); got != "Secret/istio-remote-secret-east Secret/istio-remote-secret-west "+eastWest {
			t.Fatalf("local holds %s", got)
		}
		s := memberSvc(e.get(t, "mesh"), "west")
		if s == nil || len(s.Peers) != 1 || !s.Peers[0].Primary || s.Peers[0].Name != "east" || s.Peers[0].Linked {
			t.Fatalf("west's peers %+v", s)
		}
		if got := installSettingsOf(t, e.west); got != `{"components":[`+userIstiod+`],"istio":null}` {
			t.Fatalf("west's MeshInstall got settings before the primary has an address: %s", got)
		}
		want = `{"components":[{"chart":"istiod","values":{"global":{"externalIstiod":true},"pilot":{"env":{"EXTERNAL_ISTIOD":"true"},"resources":{"cpu":"1"}}}}],` +
			`"istio":{"meshID":"mesh1","network":"net-east","clusterName":"east"}}`
		if got := installSettingsOf(t, e.east); got != want {
			t.Fatalf("east's MeshInstall settings %s, want %s", got, want)
		}
		if got := installSettingsOf(t, e.local); got != `{"components":[`+userIstiod+`],"istio":null}` {
			t.Fatalf("local's MeshInstall got settings: %s", got)
		}
		gw := &istionetworking.Gateway{}
		if err := e.east.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod-gateway"}, gw); err != nil {
			t.Fatal(err)
		}
		if len(gw.Spec.Servers) != 2 || gw.Spec.Servers[0].Port.Number != 15012 || gw.Spec.Servers[1].Port.Number != 15017 || gw.Spec.Servers[0].Hosts[0] != "*" {
			t.Fatalf("istiod-gateway %+v", gw.Spec.Servers)
		}
		vs := &istionetworking.VirtualService{}
		if err := e.east.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod-vs"}, vs); err != nil {
			t.Fatal(err)
		}
		if r := vs.Spec.Tls; len(r) != 2 || r[0].Route[0].Destination.Host != "istiod.istio-system.svc.cluster.local" || r[1].Route[0].Destination.Port.Number != 443 {
			t.Fatalf("istiod-vs %+v", vs.Spec.Tls)
		}
		svc := &corev1.Service{}
		if err := e.east.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-eastwestgateway"}, svc); err != nil || len(svc.Spec.Ports) != 4 {
			t.Fatalf("east's gateway Service ports %+v %v", svc.Spec.Ports, err)
		}
	})

	t.Run("the primary's gateway address gives the remote its remote profile settings", func(t *testing.T) {
		setGatewayAddress(t, e.east, "127.96.4.1")
		setGatewayAddress(t, e.west, "127.96.4.2")
		setGatewayAddress(t, e.local, "127.96.4.3")
		want := `{"components":[{"chart":"istiod","values":{"global":{"configCluster":false,"remotePilotAddress":"127.96.4.1"},` +
			`"istiodRemote":{"enabled":true,"injectionPath":"/inject/cluster/west/net/west"},"pilot":{"resources":{"cpu":"1"}},"profile":"remote"}}],` +
			`"istio":{"meshID":"mesh1","network":"west","clusterName":"west"}}`
		testenv.Eventually(t, 30*time.Second, "ServicesConnected and west's settings", func() error {
			f := e.get(t, "mesh")
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			if got := installSettingsOf(t, e.west); got != want {
				return testenv.Errorf("west's MeshInstall %s", got)
			}
			// The reconcile after the write reports what the install
			// carries.
			if c := memberCondition(f, "west", meshv1alpha1.TopologyConfiguredCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("west TopologyConfigured %+v", c)
			}
			return nil
		})
		f := e.get(t, "mesh")
		if c := memberCondition(f, "west", meshv1alpha1.ServicesConnectedCondition); c.Message != "controlled by primary east through 127.96.4.1; network west" {
			t.Fatalf("west ServicesConnected %+v", c)
		}
		if p := peer(memberSvc(f, "west"), "east"); !p.Linked || !p.Primary || p.Message != "" {
			t.Fatalf("west's primary entry %+v", p)
		}
		if got := primaryObjectsOf(t, e.west); got != eastWest {
			t.Fatalf("west holds %s", got)
		}
	})

	t.Run("the remote's reader reads and does nothing more; the remote's writer writes no secret", func(t *testing.T) {
		sec := &corev1.Secret{}
		if err := e.east.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-west"}, sec); err != nil {
			t.Fatal(err)
		}
		rc, err := remote.RESTConfig("west", sec.Data["west"], 0)
		if err != nil {
			t.Fatal(err)
		}
		reader := testenv.NewClient(t, rc)
		if err := reader.List(ctx, &corev1.ServiceList{}); err != nil {
			t.Fatalf("the reader cannot list Services: %v", err)
		}
		kc := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: opNS, Name: "west-kubeconfig"}, kc); err != nil {
			t.Fatal(err)
		}
		wrc, err := remote.RESTConfig("west", kc.Data["kubeconfig"], 0)
		if err != nil {
			t.Fatal(err)
		}
		writer := testenv.NewClient(t, wrc)
		forbidden := map[string]error{
			"reader: list Secrets":           reader.List(ctx, &corev1.SecretList{}),
			"reader: create a Service":       reader.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}),
			"reader: delete a Pod":           reader.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}}),
			"reader: patch a MeshInstall":    reader.Patch(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}, client.RawPatch("application/merge-patch+json", []byte(`{}`))),
			"writer: read a remote secret":   writer.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-east"}, &corev1.Secret{}),
			"writer: delete a remote secret": writer.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-remote-secret-east"}}),
			"writer: write a VirtualService": writer.Create(ctx, &istionetworking.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istiod-vs"}}),
		}
		for what, err := range forbidden {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s: %v", what, err)
			}
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		noOpReconciles(t, e.localCfg)
	})

	t.Run("removing primary restores the remote's MeshInstall and makes it a primary of its own", func(t *testing.T) {
		// A primary of its own writes remote secrets: west's identity gets
		// the rules of that role first (keeping the remote's, which release
		// its MeshInstall settings).
		grantRules(t, e.west, mesh.FederationMember{Name: "west"}, []string{"local", "east"})
		f := e.get(t, "mesh")
		base := f.DeepCopy()
		f.Spec.Clusters[2].Primary = ""
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "west multi-primary", func() error {
			if got := installSettingsOf(t, e.west); got != `{"components":[`+userIstiod+`],"istio":null}` {
				return testenv.Errorf("west's MeshInstall keeps %s", got)
			}
			if got := installSettingsOf(t, e.east); got != `{"components":[`+userIstiod+`],"istio":null}` {
				return testenv.Errorf("east's MeshInstall keeps %s", got)
			}
			if got := primaryObjectsOf(t, e.east); got != "Secret/istio-remote-secret-local Secret/istio-remote-secret-west "+eastWest {
				return testenv.Errorf("east holds %s", got)
			}
			if got := primaryObjectsOf(t, e.west); got != "Secret/istio-remote-secret-east Secret/istio-remote-secret-local "+eastWest {
				return testenv.Errorf("west holds %s", got)
			}
			return nil
		})
		svc := &corev1.Service{}
		if err := e.east.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-eastwestgateway"}, svc); err != nil || len(svc.Spec.Ports) != 2 {
			t.Fatalf("east's gateway Service keeps istiod's ports: %+v %v", svc.Spec.Ports, err)
		}
	})

	t.Run("deleting the federation removes exactly what it created", func(t *testing.T) {
		f := e.get(t, "mesh")
		base := f.DeepCopy()
		f.Spec.Clusters[2].Primary = "east"
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "west a remote again", func() error {
			if got := primaryObjectsOf(t, e.east); got != primaryHolds {
				return testenv.Errorf("east holds %s", got)
			}
			if got := installSettingsOf(t, e.west); !strings.Contains(got, `"remotePilotAddress":"127.96.4.1"`) {
				return testenv.Errorf("west's MeshInstall %s", got)
			}
			return nil
		})
		if err := e.local.Delete(ctx, e.get(t, "mesh")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "federation gone", func() error {
			if err := e.local.Get(ctx, client.ObjectKey{Name: "mesh"}, &meshv1alpha1.MeshFederation{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("federation still there: %v", err)
			}
			return nil
		})
		for name, c := range e.members {
			if got := primaryObjectsOf(t, c); got != "" {
				t.Fatalf("%s holds %s", name, got)
			}
			if got := installSettingsOf(t, c); got != `{"components":[`+userIstiod+`],"istio":null}` {
				t.Fatalf("%s's MeshInstall keeps %s", name, got)
			}
		}
	})
}

// grantRules adds to a member's service federation RBAC
// (RemoteServicesRBAC) the rules for m (the old role's rules stay until
// what it wrote is released, as docs/federation.md says).
func grantRules(t *testing.T, c client.Client, m mesh.FederationMember, peers []string) {
	t.Helper()
	sf, _ := providers.Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	for _, o := range meshfederation.RemoteServicesRBAC(sf, m, peers, "meshplane-remote", "meshplane-federation") {
		switch want := o.(type) {
		case *rbacv1.Role:
			live := &rbacv1.Role{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(want), live); err != nil {
				t.Fatal(err)
			}
			live.Rules = append(live.Rules, want.Rules...)
			if err := c.Update(context.Background(), live); err != nil {
				t.Fatal(err)
			}
		case *rbacv1.ClusterRole:
			live := &rbacv1.ClusterRole{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(want), live); err != nil {
				t.Fatal(err)
			}
			live.Rules = append(live.Rules, want.Rules...)
			if err := c.Update(context.Background(), live); err != nil {
				t.Fatal(err)
			}
		}
	}
}
