package meshfederation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// svcEnv is the service federation fixture: local and east run Istio (east
// reached through a kubeconfig bound to RemoteRBAC and RemoteServicesRBAC
// only), west runs Linkerd.
type svcEnv struct {
	local, east, west client.Client
	localCfg          *cluster.Server
	eastProxy         *tcpProxy
	members           map[string]client.Client
}

func setupServices(t *testing.T) *svcEnv {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio}}})
	reg := providers.Registry()
	iw, _ := reg.FederationTrust(meshv1alpha1.ProviderIstio)
	lw, _ := reg.FederationTrust(meshv1alpha1.ProviderLinkerd)
	sf, _ := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	e := &svcEnv{localCfg: multi.Servers[0]}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	// The local istio-system already names its network: the label is
	// restored to this value on release.
	mustCreate(t, e.local, ns(opNS), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system",
		Labels: map[string]string{"topology.istio.io/network": "net-before"}}})
	mustCreate(t, e.east, ns("istio-system"))
	mustCreate(t, e.west, ns("linkerd"))
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	westProxy := newProxy(t, hostPort(t, multi.Servers[2].Config))
	eastKC := remoteKubeconfig(t, multi.Servers[1].Config, iw, e.eastProxy.addr)
	mustCreate(t, e.east, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "east"}, []string{"local", "west"},
		"meshplane-remote", "meshplane-federation")...)
	westKC := remoteKubeconfig(t, multi.Servers[2].Config, lw, westProxy.addr)
	mustCreate(t, e.local,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "east-kubeconfig"}, Data: map[string][]byte{"kubeconfig": eastKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}})
	e.members = map[string]client.Client{"local": e.local, "east": e.east, "west": e.west}
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

func servicesFederation(name string) *meshv1alpha1.MeshFederation {
	f := federation(name)
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{MeshID: "mesh1"}
	f.Spec.Clusters[1].Network = "net-east"
	return f
}

func (e *svcEnv) get(t *testing.T, name string) *meshv1alpha1.MeshFederation {
	t.Helper()
	f := &meshv1alpha1.MeshFederation{}
	if err := e.local.Get(context.Background(), client.ObjectKey{Name: name}, f); err != nil {
		t.Fatal(err)
	}
	return f
}

func memberSvc(f *meshv1alpha1.MeshFederation, name string) *meshv1alpha1.MemberServicesStatus {
	for _, c := range f.Status.Clusters {
		if c.Name == name {
			return c.Services
		}
	}
	return nil
}

func peer(s *meshv1alpha1.MemberServicesStatus, name string) meshv1alpha1.PeerStatus {
	if s != nil {
		for _, p := range s.Peers {
			if p.Name == name {
				return p
			}
		}
	}
	return meshv1alpha1.PeerStatus{}
}

// setGatewayAddress plays the load balancer of a member's east-west
// gateway.
func setGatewayAddress(t *testing.T, c client.Client, ip string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, "gateway Service", func() error {
		svc := &corev1.Service{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "istio-system", Name: "istio-eastwestgateway"}, svc); err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		return c.Status().Update(context.Background(), svc)
	})
}

// objectsOf lists what the federation created in a member, by kind/name.
func objectsOf(t *testing.T, c client.Client) []string {
	t.Helper()
	ctx := context.Background()
	sel := client.MatchingLabels{ownership.OwnerLabel: "meshfederation..mesh"}
	var out []string
	var secrets corev1.SecretList
	var sas corev1.ServiceAccountList
	var svcs corev1.ServiceList
	var deps appsv1.DeploymentList
	var gws istionetworking.GatewayList
	for _, l := range []client.ObjectList{&secrets, &sas, &svcs, &deps, &gws} {
		if err := c.List(ctx, l, sel); err != nil && !apimeta.IsNoMatchError(err) {
			t.Fatal(err)
		}
	}
	for _, s := range secrets.Items {
		if strings.HasPrefix(s.Name, "istio-remote-secret-") {
			out = append(out, "Secret/"+s.Name)
		}
	}
	for _, s := range sas.Items {
		out = append(out, "ServiceAccount/"+s.Name)
	}
	for _, s := range svcs.Items {
		out = append(out, "Service/"+s.Name)
	}
	for _, s := range deps.Items {
		out = append(out, "Deployment/"+s.Name)
	}
	for _, g := range gws.Items {
		out = append(out, "Gateway/"+g.Name)
	}
	return out
}

// TestServiceFederation links two Istio members over real API servers
// (with a Linkerd member that shares trust only) and follows the links
// through status, minimal RBAC, no-op reconciles, a lost member, the
// removal of spec.services and the deletion of the federation.
func TestServiceFederation(t *testing.T) {
	e := setupServices(t)
	ctx := context.Background()
	mustCreate(t, e.local, servicesFederation("mesh"))

	t.Run("remote secrets and gateways land on both Istio members", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "both pairs linked", func() error {
			f := e.get(t, "mesh")
			for _, pair := range [][2]string{{"local", "east"}, {"east", "local"}} {
				if p := peer(memberSvc(f, pair[0]), pair[1]); !p.Linked {
					return testenv.Errorf("%s -> %s not linked: %+v", pair[0], pair[1], f.Status.Clusters)
				}
			}
			return nil
		})
		f := e.get(t, "mesh")
		c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "local has no east-west gateway address yet (Service istio-system/istio-eastwestgateway has no load-balancer ingress)") {
			t.Fatalf("ServicesConnected before the gateways have addresses: %+v", c)
		}
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			peerName := map[string]string{"local": "east", "east": "local"}[name]
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-" + peerName}, s); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s.Labels["istio/multiCluster"] != "true" || s.Annotations["networking.istio.io/cluster"] != peerName || len(s.Data[peerName]) == 0 {
				t.Fatalf("%s: remote secret %+v", name, s.ObjectMeta)
			}
			// The credential reads the peer's endpoints and nothing more.
			rc, err := remote.RESTConfig("remote-secret", s.Data[peerName], 0)
			if err != nil {
				t.Fatal(err)
			}
			reader := testenv.NewClient(t, rc)
			if err := reader.List(ctx, &corev1.ServiceList{}); err != nil {
				t.Fatalf("%s's credential for %s cannot list Services: %v", name, peerName, err)
			}
			if err := reader.List(ctx, &corev1.SecretList{}); !apierrors.IsForbidden(err) {
				t.Fatalf("%s's credential for %s may list Secrets: %v", name, peerName, err)
			}
			if err := reader.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}}); !apierrors.IsForbidden(err) {
				t.Fatalf("%s's credential for %s may create: %v", name, peerName, err)
			}
			got := objectsOf(t, c)
			want := "Secret/istio-remote-secret-" + peerName + " ServiceAccount/istio-eastwestgateway ServiceAccount/meshplane-istio-reader Service/istio-eastwestgateway Deployment/istio-eastwestgateway Gateway/cross-network-gateway"
			if strings.Join(got, " ") != want {
				t.Fatalf("%s holds %v, want %s", name, got, want)
			}
		}
		ns := &corev1.Namespace{}
		if err := e.east.Get(ctx, client.ObjectKey{Name: "istio-system"}, ns); err != nil || ns.Labels["topology.istio.io/network"] != "net-east" {
			t.Fatalf("east network label: %v %v", ns.Labels, err)
		}
		if err := e.local.Get(ctx, client.ObjectKey{Name: "istio-system"}, ns); err != nil || ns.Labels["topology.istio.io/network"] != "local" {
			t.Fatalf("local network label: %v %v", ns.Labels, err)
		}
		// Nothing lands on the Linkerd member; each pair with it says why.
		if got := objectsOf(t, e.west); len(got) != 0 {
			t.Fatalf("west holds %v", got)
		}
		if p := peer(memberSvc(f, "local"), "west"); p.Linked || !strings.Contains(p.Message, "local (Istio) and west (Linkerd) share trust but cannot federate services") {
			t.Fatalf("local -> west: %+v", p)
		}
		if c := memberCondition(f, "west", meshv1alpha1.ServicesConnectedCondition); c == nil || c.Reason != meshv1alpha1.UnsupportedFeatureReason ||
			c.Message != "west: the Linkerd multicluster extension is not installed in cluster west (no Link kind multicluster.linkerd.io/v1alpha3): "+
				"set spec.linkerd.multicluster on its MeshInstall (gateway: true, links: the peers' names), or install the linkerd-multicluster chart into namespace linkerd-multicluster (gateway.enabled=true), listing each peer in its controllers values (controllers[].link.ref.name)" {
			t.Fatalf("west ServicesConnected: %+v", c)
		}
	})

	t.Run("gateway addresses make the federation connected", func(t *testing.T) {
		setGatewayAddress(t, e.local, "127.96.1.1")
		setGatewayAddress(t, e.east, "127.96.1.2")
		testenv.Eventually(t, 20*time.Second, "ServicesConnected", func() error {
			f := e.get(t, "mesh")
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
			if c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			if !strings.Contains(c.Message, "trust only, no service federation between east/west, local/west") {
				return testenv.Errorf("message %q", c.Message)
			}
			if s := memberSvc(f, "east"); s.GatewayAddress != "127.96.1.2" || s.Network != "net-east" {
				return testenv.Errorf("east %+v", s)
			}
			if r := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ReadyCondition); r == nil || r.Status != metav1.ConditionTrue {
				return testenv.Errorf("Ready %+v", r)
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
			"read another Secret":     limited.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-other"}, &corev1.Secret{}),
			"list Services":           limited.List(ctx, &corev1.ServiceList{}),
			"label another namespace": limited.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`))),
			"delete a ConfigMap":      limited.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio"}}),
			"read another Deployment": limited.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istiod"}, &appsv1.Deployment{}),
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

	t.Run("a root rotation keeps the links in every phase", func(t *testing.T) {
		before := map[string]string{}
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			s := &corev1.Secret{}
			peerName := map[string]string{"local": "east", "east": "local"}[name]
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-" + peerName}, s); err != nil {
				t.Fatal(err)
			}
			before[name] = s.ResourceVersion
		}
		f := e.get(t, "mesh")
		base := f.DeepCopy()
		f.Spec.Rotation.Trigger = "r1"
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "rotation completed with links in place", func() error {
			f := e.get(t, "mesh")
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				t.Fatalf("links lost during rotation phase %+v: %+v", f.Status.Rotation, c)
			}
			if f.Status.Rotation == nil || f.Status.Rotation.Phase != meshv1alpha1.RotationCompleted {
				return testenv.Errorf("rotation %+v", f.Status.Rotation)
			}
			return nil
		})
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			s := &corev1.Secret{}
			peerName := map[string]string{"local": "east", "east": "local"}[name]
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-" + peerName}, s); err != nil || s.ResourceVersion != before[name] {
				t.Fatalf("%s: remote secret rewritten by the rotation (%s -> %s): %v", name, before[name], s.ResourceVersion, err)
			}
		}
	})

	t.Run("a lost member holds only its own pair", func(t *testing.T) {
		e.eastProxy.cut()
		restarted := false
		defer func() {
			if !restarted {
				_ = e.eastProxy.start()
			}
		}()
		// Remote members are not watched: a change in the operator
		// namespace wakes the federation instead of the resync.
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke"}})
		testenv.Eventually(t, 30*time.Second, "east reported lost", func() error {
			f := e.get(t, "mesh")
			if p := peer(memberSvc(f, "local"), "east"); p.Linked || p.Message != "east does not answer; local keeps the credentials it holds" {
				return testenv.Errorf("local -> east %+v; status %+v", p, f.Status)
			}
			return nil
		})
		if got := objectsOf(t, e.local); len(got) != 6 {
			t.Fatalf("local holds %v while east is lost", got)
		}
		restarted = true
		if err := e.eastProxy.start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "east back", func() error {
			f := e.get(t, "mesh")
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			return nil
		})
	})

	t.Run("an ambient member older than 1.27 is refused and gives up its links", func(t *testing.T) {
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.26.3", Profile: meshv1alpha1.ProfileAmbient}}
		mustCreate(t, e.east, mi)
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-ambient"}})
		want := "east: MeshInstall istio installs Istio 1.26.3 with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
			"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"
		testenv.Eventually(t, 30*time.Second, "east refused and cleaned", func() error {
			f := e.get(t, "mesh")
			if c := memberCondition(f, "east", meshv1alpha1.ServicesConnectedCondition); c == nil || c.Reason != meshv1alpha1.UnsupportedFeatureReason || c.Message != want {
				return testenv.Errorf("east ServicesConnected %+v", c)
			}
			if p := peer(memberSvc(f, "local"), "east"); p.Linked || p.Message != want {
				return testenv.Errorf("local -> east %+v", p)
			}
			if got := objectsOf(t, e.east); len(got) != 0 {
				return testenv.Errorf("east holds %v", got)
			}
			if got := objectsOf(t, e.local); len(got) != 5 {
				return testenv.Errorf("local holds %v", got)
			}
			return nil
		})
		if err := e.east.Delete(ctx, mi); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-sidecar"}})
		testenv.Eventually(t, 30*time.Second, "east linked again", func() error {
			f := e.get(t, "mesh")
			if p := peer(memberSvc(f, "local"), "east"); !p.Linked {
				return testenv.Errorf("local -> east %+v", p)
			}
			if got := objectsOf(t, e.east); len(got) != 6 {
				return testenv.Errorf("east holds %v", got)
			}
			return nil
		})
	})

	t.Run("a Linkerd member with a MeshInstall gets the multicluster extension installed by it", func(t *testing.T) {
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
				Linkerd: &meshv1alpha1.LinkerdInstallSpec{HighAvailability: true}}}
		mustCreate(t, e.west, mi)
		// The cluster-wide part of west's services RBAC: list, get and
		// patch on MeshInstalls (its namespaced part needs the extension's
		// namespace, which the extension brings).
		lsf, err := providers.Registry().ServiceFederation(meshv1alpha1.ProviderLinkerd)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range meshfederation.RemoteServicesRBAC(lsf, mesh.FederationMember{Name: "west"}, []string{"local", "east"}, "meshplane-remote", "meshplane-federation") {
			switch o.(type) {
			case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding:
				mustCreate(t, e.west, o)
			}
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-extension"}})
		want := "west: the Linkerd multicluster extension is being installed in cluster west by MeshInstall linkerd " +
			"(spec.linkerd.multicluster, set by this federation); the links follow once it serves the Link kind"
		testenv.Eventually(t, 30*time.Second, "west's MeshInstall carries the extension", func() error {
			f := e.get(t, "mesh")
			if c := memberCondition(f, "west", meshv1alpha1.ServicesConnectedCondition); c == nil || c.Reason != meshv1alpha1.WaitingReason || c.Message != want {
				return testenv.Errorf("west ServicesConnected %+v", c)
			}
			got := &meshv1alpha1.MeshInstall{}
			if err := e.west.Get(ctx, client.ObjectKey{Name: "linkerd"}, got); err != nil {
				return err
			}
			if mc := got.Spec.Linkerd.Multicluster; mc == nil || mc.Gateway == nil || !*mc.Gateway || len(mc.Links) != 0 || !got.Spec.Linkerd.HighAvailability {
				return testenv.Errorf("west's MeshInstall %+v", got.Spec.Linkerd)
			}
			return nil
		})
		// Nothing but the setting lands on west while the extension is missing.
		if got := objectsOf(t, e.west); len(got) != 0 {
			t.Fatalf("west holds %v", got)
		}
	})

	t.Run("removing spec.services removes exactly what it created", func(t *testing.T) {
		f := e.get(t, "mesh")
		base := f.DeepCopy()
		f.Spec.Services = nil
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		e.waitClean(t, "net-before")
		testenv.Eventually(t, 30*time.Second, "west's MeshInstall without the extension, the user's fields kept", func() error {
			got := &meshv1alpha1.MeshInstall{}
			if err := e.west.Get(ctx, client.ObjectKey{Name: "linkerd"}, got); err != nil {
				return err
			}
			if got.Spec.Linkerd == nil || got.Spec.Linkerd.Multicluster != nil || !got.Spec.Linkerd.HighAvailability {
				return testenv.Errorf("west's MeshInstall %+v", got.Spec.Linkerd)
			}
			return nil
		})
		testenv.Eventually(t, 30*time.Second, "status without services", func() error {
			f := e.get(t, "mesh")
			if memberSvc(f, "local") != nil || memberSvc(f, "east") != nil || apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition) != nil {
				return testenv.Errorf("status keeps services: %+v", f.Status)
			}
			return nil
		})
	})

	t.Run("deleting the federation removes the links, never the mesh or its trust", func(t *testing.T) {
		f := e.get(t, "mesh")
		base := f.DeepCopy()
		f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "linked again", func() error {
			if got := objectsOf(t, e.east); len(got) != 6 {
				return testenv.Errorf("east holds %v", got)
			}
			return nil
		})
		if err := e.local.Delete(ctx, e.get(t, "mesh")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "federation gone", func() error {
			err := e.local.Get(ctx, client.ObjectKey{Name: "mesh"}, &meshv1alpha1.MeshFederation{})
			if !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
		e.waitClean(t, "net-before")
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "cacerts"}, &corev1.Secret{}); err != nil {
				t.Fatalf("%s lost its trust material: %v", name, err)
			}
			if err := c.Get(ctx, client.ObjectKey{Name: "istio-system"}, &corev1.Namespace{}); err != nil {
				t.Fatalf("%s lost istio-system: %v", name, err)
			}
		}
	})
}

// waitClean waits until neither Istio member holds anything of service
// federation and their namespaces' network labels are back.
func (e *svcEnv) waitClean(t *testing.T, localLabel string) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, "members clean", func() error {
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			if got := objectsOf(t, c); len(got) != 0 {
				return testenv.Errorf("%s holds %v", name, got)
			}
			ns := &corev1.Namespace{}
			if err := c.Get(ctx, client.ObjectKey{Name: "istio-system"}, ns); err != nil {
				return err
			}
			want := map[string]string{"local": localLabel, "east": ""}[name]
			if ns.Labels["topology.istio.io/network"] != want {
				return testenv.Errorf("%s network label %q, want %q", name, ns.Labels["topology.istio.io/network"], want)
			}
		}
		return nil
	})
}
