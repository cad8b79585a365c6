package meshfederation_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// setupAmbient is three Istio members: local and east in ambient mode
// (1.28.1; east reached through a kubeconfig bound to RemoteRBAC and the
// ambient RemoteServicesRBAC only), west in sidecar mode.
func setupAmbient(t *testing.T) *svcEnv {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	reg := providers.Registry()
	iw, _ := reg.FederationTrust(meshv1alpha1.ProviderIstio)
	sf, _ := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	e := &svcEnv{localCfg: multi.Servers[0]}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	mustCreate(t, e.local, ns(opNS), ns("istio-system"), ambientInstall("1.28.1"))
	mustCreate(t, e.east, ns("istio-system"), ambientInstall("1.28.1"))
	mustCreate(t, e.west, ns("istio-system"), &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1"}})
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	westProxy := newProxy(t, hostPort(t, multi.Servers[2].Config))
	eastKC := remoteKubeconfig(t, multi.Servers[1].Config, iw, e.eastProxy.addr)
	mustCreate(t, e.east, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "east", Profile: meshv1alpha1.ProfileAmbient}, []string{"local", "west"},
		"meshplane-remote", "meshplane-federation")...)
	westKC := remoteKubeconfig(t, multi.Servers[2].Config, iw, westProxy.addr)
	mustCreate(t, e.west, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "west"}, []string{"local", "east"},
		"meshplane-remote", "meshplane-federation")...)
	mustCreate(t, e.local,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "east-kubeconfig"}, Data: map[string][]byte{"kubeconfig": eastKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}})
	e.members = map[string]client.Client{"local": e.local, "east": e.east, "west": e.west}
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

func jsonOf(v any) apiextensionsv1.JSON {
	b, _ := json.Marshal(v)
	return apiextensionsv1.JSON{Raw: b}
}

func ambientInstall(version string) *meshv1alpha1.MeshInstall {
	return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: version, Profile: meshv1alpha1.ProfileAmbient,
			Components: []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: jsonOf(map[string]any{"pilot": map[string]any{"resources": map[string]any{"cpu": "1"}}})}}}}
}

// ambientFederation federates local, east (ambient) and west (sidecar),
// each on a network of its own.
func ambientFederation() *meshv1alpha1.MeshFederation {
	f := federation("mesh")
	f.Spec.Clusters[2].Provider = meshv1alpha1.ProviderIstio
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{MeshID: "mesh1"}
	f.Spec.Clusters[1].Network = "net-east"
	return f
}

// ambientObjectsOf lists what the federation created in a member: the
// objects of objectsOf and its Gateway API Gateways.
func ambientObjectsOf(t *testing.T, c client.Client) []string {
	t.Helper()
	out := objectsOf(t, c)
	var gws gatewayv1.GatewayList
	if err := c.List(context.Background(), &gws, client.MatchingLabels{"meshplane.io/owner": "meshfederation..mesh"}); err != nil {
		t.Fatal(err)
	}
	for _, g := range gws.Items {
		out = append(out, "gateway.networking.k8s.io/Gateway/"+g.Name)
	}
	return out
}

// installSettingsOf renders the parts of a member's MeshInstall the
// federation writes.
func installSettingsOf(t *testing.T, c client.Client) string {
	t.Helper()
	mi := &meshv1alpha1.MeshInstall{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "istio"}, mi); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"istio": mi.Spec.Istio, "components": mi.Spec.Components})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// playIstiod creates the Service istiod deploys for the ambient east-west
// Gateway and gives it a load-balancer address.
func playIstiod(t *testing.T, c client.Client, ip string) {
	t.Helper()
	mustCreate(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-ambient-eastwestgateway"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: "mesh", Port: 15008}}}})
	svc := &corev1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "istio-system", Name: "istio-ambient-eastwestgateway"}, svc); err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	if err := c.Status().Update(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
}

// TestAmbientFederation federates two Istio ambient members (1.28.1) and
// a sidecar one over real API servers: the istio-east-west Gateways, the
// topology settings and the remote secrets land with minimal RBAC, the
// ambient/sidecar pairs are refused per pair, the gateway addresses make
// the federation connected, a no-op reconcile writes nothing, an ambient
// member older than 1.27 is refused naming its version, and deleting the
// federation removes exactly what it created.
func TestAmbientFederation(t *testing.T) {
	e := setupAmbient(t)
	ctx := context.Background()
	mustCreate(t, e.local, ambientFederation())
	const userComponent = `{"chart":"istiod","values":{"pilot":{"resources":{"cpu":"1"}}}}`

	t.Run("gateways, settings and remote secrets land on the ambient members", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "ambient pairs linked", func() error {
			f := e.get(t, "mesh")
			for _, pair := range [][2]string{{"local", "east"}, {"east", "local"}} {
				if p := peer(memberSvc(f, pair[0]), pair[1]); !p.Linked {
					return testenv.Errorf("%s -> %s not linked: %+v", pair[0], pair[1], f.Status.Clusters)
				}
			}
			return nil
		})
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			other := map[string]string{"local": "east", "east": "local"}[name]
			network := map[string]string{"local": "local", "east": "net-east"}[name]
			want := "Secret/istio-remote-secret-" + other + " ServiceAccount/meshplane-istio-reader gateway.networking.k8s.io/Gateway/istio-ambient-eastwestgateway"
			if got := strings.Join(ambientObjectsOf(t, c), " "); got != want {
				t.Fatalf("%s holds %s, want %s", name, got, want)
			}
			gw := &gatewayv1.Gateway{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-ambient-eastwestgateway"}, gw); err != nil {
				t.Fatal(err)
			}
			l := gw.Spec.Listeners
			if gw.Spec.GatewayClassName != "istio-east-west" || gw.Labels["topology.istio.io/network"] != network || len(l) != 1 || l[0].Port != 15008 || l[0].Protocol != "HBONE" ||
				l[0].TLS == nil || l[0].TLS.Mode == nil || *l[0].TLS.Mode != gatewayv1.TLSModeTerminate || l[0].TLS.Options["gateway.istio.io/tls-terminate-mode"] != "ISTIO_MUTUAL" {
				t.Fatalf("%s: Gateway %+v %+v", name, gw.Labels, gw.Spec)
			}
			want = `{"components":[{"chart":"istiod","values":{"pilot":{"env":{"AMBIENT_ENABLE_MULTI_NETWORK":"true"},"resources":{"cpu":"1"}}}}],` +
				`"istio":{"meshID":"mesh1","network":"` + network + `","clusterName":"` + name + `"}}`
			if got := installSettingsOf(t, c); got != want {
				t.Fatalf("%s: MeshInstall settings %s, want %s", name, got, want)
			}
			nsObj := &corev1.Namespace{}
			if err := c.Get(ctx, client.ObjectKey{Name: "istio-system"}, nsObj); err != nil || nsObj.Labels["topology.istio.io/network"] != network {
				t.Fatalf("%s network label: %v %v", name, nsObj.Labels, err)
			}
		}
		// The sidecar member gets its own east-west gateway and no
		// credential of an ambient member; each mixed pair says why.
		want := "ServiceAccount/istio-eastwestgateway ServiceAccount/meshplane-istio-reader Service/istio-eastwestgateway Deployment/istio-eastwestgateway Gateway/cross-network-gateway"
		if got := strings.Join(ambientObjectsOf(t, e.west), " "); got != want {
			t.Fatalf("west holds %s, want %s", got, want)
		}
		if got := installSettingsOf(t, e.west); got != `{"components":null,"istio":null}` {
			t.Fatalf("west's MeshInstall got settings: %s", got)
		}
		f := e.get(t, "mesh")
		mixed := "local runs Istio in ambient mode and west in sidecar mode: Istio does not federate services between ambient and sidecar clusters " +
			"(an ambient east-west gateway speaks HBONE on port 15008, a sidecar one mTLS on 15443); they share trust only. Use the same profile (spec.profile of their MeshInstalls) on both"
		for _, pair := range [][2]string{{"local", "west"}, {"west", "local"}} {
			if p := peer(memberSvc(f, pair[0]), pair[1]); p.Linked || p.Message != mixed {
				t.Fatalf("%s -> %s: %+v", pair[0], pair[1], p)
			}
		}
		c := memberCondition(f, "east", meshv1alpha1.ServicesConnectedCondition)
		if c == nil || c.Status != metav1.ConditionFalse || c.Message != "east has no east-west gateway address yet (Service istio-system/istio-ambient-eastwestgateway has no load-balancer ingress)" {
			t.Fatalf("east ServicesConnected before its gateway has an address: %+v", c)
		}
	})

	t.Run("gateway addresses make the federation connected", func(t *testing.T) {
		playIstiod(t, e.local, "127.96.2.1")
		playIstiod(t, e.east, "127.96.2.2")
		setGatewayAddress(t, e.west, "127.96.2.3")
		testenv.Eventually(t, 20*time.Second, "ServicesConnected", func() error {
			f := e.get(t, "mesh")
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
			if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "trust only, no service federation between east/west, local/west") {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			if s := memberSvc(f, "east"); s.GatewayAddress != "127.96.2.2" || s.Network != "net-east" {
				return testenv.Errorf("east %+v", s)
			}
			return nil
		})
	})

	t.Run("the remote identity holds nothing more than it needs", func(t *testing.T) {
		kc := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: opNS, Name: "east-kubeconfig"}, kc); err != nil {
			t.Fatal(err)
		}
		rc, err := remote.RESTConfig("east", kc.Data["kubeconfig"], 0)
		if err != nil {
			t.Fatal(err)
		}
		limited := testenv.NewClient(t, rc)
		forbidden := map[string]error{
			"read another Gateway":         limited.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "waypoint"}, &gatewayv1.Gateway{}),
			"delete a MeshInstall":         limited.Delete(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}),
			"list Gateways":                limited.List(ctx, &gatewayv1.GatewayList{}),
			"delete the gateway's Service": limited.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-ambient-eastwestgateway"}}),
		}
		for what, err := range forbidden {
			if !apierrors.IsForbidden(err) {
				t.Errorf("remote identity may %s: %v", what, err)
			}
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		noOpReconciles(t, e.localCfg)
	})

	t.Run("an ambient member older than 1.27 is refused naming its version and gives up what it held", func(t *testing.T) {
		mi := &meshv1alpha1.MeshInstall{}
		if err := e.east.Get(ctx, client.ObjectKey{Name: "istio"}, mi); err != nil {
			t.Fatal(err)
		}
		base := mi.DeepCopy()
		mi.Spec.Version = "1.26.3"
		if err := e.east.Patch(ctx, mi, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-old"}})
		want := "east: MeshInstall istio installs Istio 1.26.3 with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
			"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"
		testenv.Eventually(t, 30*time.Second, "east refused and cleaned", func() error {
			f := e.get(t, "mesh")
			if c := memberCondition(f, "east", meshv1alpha1.ServicesConnectedCondition); c == nil || c.Reason != meshv1alpha1.UnsupportedFeatureReason || c.Message != want {
				return testenv.Errorf("east ServicesConnected %+v", c)
			}
			if got := ambientObjectsOf(t, e.east); len(got) != 0 {
				return testenv.Errorf("east holds %v", got)
			}
			if got := installSettingsOf(t, e.east); got != `{"components":[`+userComponent+`],"istio":null}` {
				return testenv.Errorf("east's MeshInstall keeps %s", got)
			}
			if got := strings.Join(ambientObjectsOf(t, e.local), " "); got != "ServiceAccount/meshplane-istio-reader gateway.networking.k8s.io/Gateway/istio-ambient-eastwestgateway" {
				return testenv.Errorf("local holds %s", got)
			}
			return nil
		})
	})

	t.Run("an ambient member turned sidecar gives up its settings and links with the sidecar member", func(t *testing.T) {
		mi := &meshv1alpha1.MeshInstall{}
		if err := e.local.Get(ctx, client.ObjectKey{Name: "istio"}, mi); err != nil {
			t.Fatal(err)
		}
		base := mi.DeepCopy()
		mi.Spec.Profile = meshv1alpha1.ProfileSidecar
		if err := e.local.Patch(ctx, mi, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-sidecar"}})
		testenv.Eventually(t, 30*time.Second, "local sidecar, linked with west", func() error {
			f := e.get(t, "mesh")
			for _, pair := range [][2]string{{"local", "west"}, {"west", "local"}} {
				if p := peer(memberSvc(f, pair[0]), pair[1]); !p.Linked {
					return testenv.Errorf("%s -> %s not linked: %+v (local ServicesConnected %+v)", pair[0], pair[1], p, memberCondition(f, "local", meshv1alpha1.ServicesConnectedCondition))
				}
			}
			want := "Secret/istio-remote-secret-west ServiceAccount/istio-eastwestgateway ServiceAccount/meshplane-istio-reader Service/istio-eastwestgateway Deployment/istio-eastwestgateway Gateway/cross-network-gateway"
			if got := strings.Join(ambientObjectsOf(t, e.local), " "); got != want {
				return testenv.Errorf("local holds %s", got)
			}
			if got := installSettingsOf(t, e.local); got != `{"components":[`+userComponent+`],"istio":null}` {
				return testenv.Errorf("local's MeshInstall keeps %s", got)
			}
			return nil
		})
		// istiod's Service of the ambient gateway (removed with its Gateway
		// by the garbage collector, which envtest does not run) has a name
		// of its own: it is never in the sidecar gateway's way.
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-ambient-eastwestgateway"}, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
			t.Fatalf("the ambient Gateway is still there: %v", err)
		}
	})

	t.Run("deleting the federation removes exactly what it created", func(t *testing.T) {
		if err := e.local.Delete(ctx, e.get(t, "mesh")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "federation gone", func() error {
			err := e.local.Get(ctx, client.ObjectKey{Name: "mesh"}, &meshv1alpha1.MeshFederation{})
			if !apierrors.IsNotFound(err) {
				return testenv.Errorf("federation still there: %v", err)
			}
			return nil
		})
		for name, c := range e.members {
			if got := ambientObjectsOf(t, c); len(got) != 0 {
				t.Fatalf("%s holds %v", name, got)
			}
			mi := &meshv1alpha1.MeshInstall{}
			if err := c.Get(ctx, client.ObjectKey{Name: "istio"}, mi); err != nil {
				t.Fatalf("%s's MeshInstall: %v", name, err)
			}
			if mi.Spec.Istio != nil {
				t.Fatalf("%s's MeshInstall keeps %+v", name, mi.Spec.Istio)
			}
			nsObj := &corev1.Namespace{}
			if err := c.Get(ctx, client.ObjectKey{Name: "istio-system"}, nsObj); err != nil || nsObj.Labels["topology.istio.io/network"] != "" {
				t.Fatalf("%s keeps the network label: %v %v", name, nsObj.Labels, err)
			}
		}
		if got := installSettingsOf(t, e.local); got != `{"components":[`+userComponent+`],"istio":null}` {
			t.Fatalf("local's MeshInstall: %s", got)
		}
		// The Service istiod deployed for the Gateway is not the
		// federation's.
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-ambient-eastwestgateway"}, &corev1.Service{}); err != nil {
			t.Fatalf("the Service of local's gateway: %v", err)
		}
	})
}
