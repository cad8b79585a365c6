package meshfederation_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	linkv1alpha3 "github.com/linkerd/linkerd2/controller/gen/apis/link/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// linkEnv is the Linkerd service federation fixture: local and east run
// Linkerd with the multicluster extension (east reached through a
// kubeconfig bound to RemoteRBAC and RemoteServicesRBAC only), west runs
// Istio.
type linkEnv struct {
	local, east, west client.Client
	localCfg          *cluster.Server
	eastProxy         *tcpProxy
}

// linkerdGateway is the extension's linkerd-gateway Service as its chart
// renders it (LoadBalancer, mc-gateway 4143, mc-probe 4191, identity and
// probe annotations).
func linkerdGateway() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "linkerd-gateway",
		Annotations: map[string]string{
			"mirror.linkerd.io/gateway-identity": "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local",
			"mirror.linkerd.io/probe-path":       "/ready", "mirror.linkerd.io/probe-period": "3"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "linkerd-gateway"},
			Ports: []corev1.ServicePort{{Name: "mc-gateway", Port: 4143}, {Name: "mc-probe", Port: 4191}}}}
}

func setGatewayIngress(t *testing.T, c client.Client, ip string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, "linkerd-gateway address", func() error {
		svc := &corev1.Service{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "linkerd-multicluster", Name: "linkerd-gateway"}, svc); err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		return c.Status().Update(context.Background(), svc)
	})
}

func setupLinks(t *testing.T) *linkEnv {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Linkerd, cluster.Istio}}})
	reg := providers.Registry()
	iw, _ := reg.FederationTrust(meshv1alpha1.ProviderIstio)
	lw, _ := reg.FederationTrust(meshv1alpha1.ProviderLinkerd)
	sf, _ := reg.ServiceFederation(meshv1alpha1.ProviderLinkerd)
	e := &linkEnv{localCfg: multi.Servers[0]}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	mustCreate(t, e.local, ns(opNS), ns("linkerd"), ns("linkerd-multicluster"), linkerdGateway())
	mustCreate(t, e.east, ns("linkerd"), ns("linkerd-multicluster"), linkerdGateway())
	mustCreate(t, e.west, ns("istio-system"))
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	westProxy := newProxy(t, hostPort(t, multi.Servers[2].Config))
	eastKC := remoteKubeconfig(t, multi.Servers[1].Config, lw, e.eastProxy.addr)
	mustCreate(t, e.east, meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: "east", EastWestGateway: true}, []string{"local", "west"},
		"meshplane-remote", "meshplane-federation")...)
	westKC := remoteKubeconfig(t, multi.Servers[2].Config, iw, westProxy.addr)
	isf, _ := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	mustCreate(t, e.west, meshfederation.RemoteServicesRBAC(isf, mesh.FederationMember{Name: "west", EastWestGateway: true}, []string{"local", "east"},
		"meshplane-remote", "meshplane-federation")...)
	mustCreate(t, e.local,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "east-kubeconfig"}, Data: map[string][]byte{"kubeconfig": eastKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}})
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

func linksFederation(name string) *meshv1alpha1.MeshFederation {
	f := federation(name)
	f.Spec.Clusters[0].Provider = meshv1alpha1.ProviderLinkerd
	f.Spec.Clusters[1].Provider = meshv1alpha1.ProviderLinkerd
	f.Spec.Clusters[2].Provider = meshv1alpha1.ProviderIstio
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
	return f
}

func (e *linkEnv) get(t *testing.T) *meshv1alpha1.MeshFederation {
	t.Helper()
	f := &meshv1alpha1.MeshFederation{}
	if err := e.local.Get(context.Background(), client.ObjectKey{Name: "mesh"}, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// linkObjectsOf lists what the federation holds in a member, by
// kind/namespace/name, sorted.
func linkObjectsOf(t *testing.T, c client.Client) []string {
	t.Helper()
	ctx := context.Background()
	sel := client.MatchingLabels{ownership.OwnerLabel: "meshfederation..mesh"}
	var out []string
	var secrets corev1.SecretList
	var sas corev1.ServiceAccountList
	var links linkv1alpha3.LinkList
	var roles rbacv1.ClusterRoleList
	var bindings rbacv1.ClusterRoleBindingList
	for _, l := range []client.ObjectList{&secrets, &sas, &links, &roles, &bindings} {
		if err := c.List(ctx, l, sel); err != nil && !apimeta.IsNoMatchError(err) {
			t.Fatal(err)
		}
	}
	for _, s := range secrets.Items {
		if strings.HasPrefix(s.Name, "cluster-credentials-") {
			out = append(out, "Secret/"+s.Namespace+"/"+s.Name)
		}
	}
	for _, s := range sas.Items {
		out = append(out, "ServiceAccount/"+s.Namespace+"/"+s.Name)
	}
	for _, l := range links.Items {
		out = append(out, "Link/"+l.Namespace+"/"+l.Name)
	}
	for _, r := range roles.Items {
		out = append(out, "ClusterRole/"+r.Name)
	}
	for _, r := range bindings.Items {
		out = append(out, "ClusterRoleBinding/"+r.Name)
	}
	sort.Strings(out)
	return out
}

// linkVersions records the resourceVersions of a member's Link and
// credentials for peer.
func linkVersions(t *testing.T, c client.Client, peer string) string {
	t.Helper()
	ctx := context.Background()
	l, s1, s2 := &linkv1alpha3.Link{}, &corev1.Secret{}, &corev1.Secret{}
	for _, g := range []struct {
		key client.ObjectKey
		obj client.Object
	}{{client.ObjectKey{Namespace: "linkerd-multicluster", Name: peer}, l},
		{client.ObjectKey{Namespace: "linkerd-multicluster", Name: "cluster-credentials-" + peer}, s1},
		{client.ObjectKey{Namespace: "linkerd", Name: "cluster-credentials-" + peer}, s2}} {
		if err := c.Get(ctx, g.key, g.obj); err != nil {
			t.Fatalf("%s: %v", g.key, err)
		}
	}
	return l.ResourceVersion + "/" + s1.ResourceVersion + "/" + s2.ResourceVersion
}

const linkHeld = "ClusterRole/linkerd-service-mirror-remote-access-meshplane ClusterRoleBinding/linkerd-service-mirror-remote-access-meshplane " +
	"Link/linkerd-multicluster/%[1]s Secret/linkerd-multicluster/cluster-credentials-%[1]s Secret/linkerd/cluster-credentials-%[1]s " +
	"ServiceAccount/linkerd-multicluster/linkerd-service-mirror-remote-access-meshplane"

// TestLinkerdServiceFederation links two Linkerd members over real API
// servers with the real Link CRD (an Istio member shares trust only) and
// follows the Links through gateway addresses, minimal RBAC, no-op
// reconciles, a trust rotation, a lost member, gateway-less mode and
// deletion.
func TestLinkerdServiceFederation(t *testing.T) {
	e := setupLinks(t)
	ctx := context.Background()
	setGatewayIngress(t, e.local, "127.96.2.1")
	mustCreate(t, e.local, linksFederation("mesh"))

	t.Run("a peer whose gateway has no address is not linked yet", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "east -> local linked, local -> east waiting", func() error {
			f := e.get(t)
			if p := peer(memberSvc(f, "east"), "local"); !p.Linked {
				return testenv.Errorf("east -> local %+v", p)
			}
			want := "east: the gateway Service linkerd-multicluster/linkerd-gateway has no load-balancer ingress yet"
			if p := peer(memberSvc(f, "local"), "east"); p.Linked || p.Message != want {
				return testenv.Errorf("local -> east %+v", p)
			}
			return nil
		})
		l := &linkv1alpha3.Link{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "east"}, l); !apierrors.IsNotFound(err) {
			t.Fatalf("local holds a Link to east before east's gateway has an address: %v", err)
		}
	})

	t.Run("Links and credentials land on both members", func(t *testing.T) {
		setGatewayIngress(t, e.east, "127.96.2.2")
		setGatewayAddress(t, e.west, "127.96.2.3")
		// Remote members are not watched: a change in the operator
		// namespace wakes the federation.
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-gateway"}})
		testenv.Eventually(t, 30*time.Second, "ServicesConnected", func() error {
			f := e.get(t)
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
			if c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v; %+v", c, f.Status.Clusters)
			}
			if s := memberSvc(f, "east"); s.GatewayAddress != "127.96.2.2" {
				return testenv.Errorf("east %+v", s)
			}
			return nil
		})
		f := e.get(t)
		if p := peer(memberSvc(f, "local"), "west"); p.Linked || !strings.Contains(p.Message, "local (Linkerd) and west (Istio) share trust but cannot federate services") {
			t.Fatalf("local -> west: %+v", p)
		}
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			peerName := map[string]string{"local": "east", "east": "local"}[name]
			if got, want := strings.Join(linkObjectsOf(t, c), " "), strings.ReplaceAll(linkHeld, "%[1]s", peerName); got != want {
				t.Fatalf("%s holds %s, want %s", name, got, want)
			}
			l := &linkv1alpha3.Link{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: peerName}, l); err != nil {
				t.Fatal(err)
			}
			addr := map[string]string{"local": "127.96.2.2", "east": "127.96.2.1"}[name]
			if l.Spec.GatewayAddress != addr || l.Spec.GatewayPort != "4143" || l.Spec.ProbeSpec.Port != "4191" || l.Spec.ProbeSpec.Period != "3s" ||
				l.Spec.GatewayIdentity != "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local" ||
				l.Spec.ClusterCredentialsSecret != "cluster-credentials-"+peerName || l.Spec.TargetClusterName != peerName ||
				l.Spec.Selector == nil || l.Spec.Selector.MatchLabels["mirror.linkerd.io/exported"] != "true" ||
				l.Spec.FederatedServiceSelector.MatchLabels["mirror.linkerd.io/federated"] != "member" {
				t.Fatalf("%s: Link %+v", name, l.Spec)
			}
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "cluster-credentials-" + peerName}, s); err != nil {
				t.Fatal(err)
			}
			if s.Type != "mirror.linkerd.io/remote-kubeconfig" || len(s.Data["kubeconfig"]) == 0 {
				t.Fatalf("%s: credentials %s %v", name, s.Type, s.Data)
			}
			dest := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "cluster-credentials-" + peerName}, dest); err != nil ||
				dest.Labels["multicluster.linkerd.io/cluster-name"] != peerName || string(dest.Data["kubeconfig"]) != string(s.Data["kubeconfig"]) {
				t.Fatalf("%s: destination credentials %+v %v", name, dest.ObjectMeta, err)
			}
			// The credential reads the peer's endpoints and nothing more.
			rc, err := remote.RESTConfig("credentials", s.Data["kubeconfig"], 0)
			if err != nil {
				t.Fatal(err)
			}
			reader := testenv.NewClient(t, rc)
			if err := reader.List(ctx, &corev1.ServiceList{}); err != nil {
				t.Fatalf("%s's credential for %s cannot list Services: %v", name, peerName, err)
			}
			forbidden := map[string]error{
				"list Secrets":         reader.List(ctx, &corev1.SecretList{}),
				"create a ConfigMap":   reader.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}}),
				"read a ConfigMap":     reader.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "other"}, &corev1.ConfigMap{}),
				"list Links":           reader.List(ctx, &linkv1alpha3.LinkList{}),
				"delete a Service":     reader.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "linkerd-gateway"}}),
				"update a Namespace":   reader.Update(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}),
				"list ServiceAccounts": reader.List(ctx, &corev1.ServiceAccountList{}),
			}
			for what, err := range forbidden {
				if !apierrors.IsForbidden(err) {
					t.Errorf("%s's credential for %s may %s: %v", name, peerName, what, err)
				}
			}
		}
		// The Istio member holds its own Istio federation, no Linkerd link.
		for _, o := range linkObjectsOf(t, e.west) {
			if strings.Contains(o, "Link/") || strings.Contains(o, "cluster-credentials") || strings.Contains(o, "linkerd") {
				t.Fatalf("west holds %s", o)
			}
		}
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
			"read another Link":           limited.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "other"}, &linkv1alpha3.Link{}),
			"list Links":                  limited.List(ctx, &linkv1alpha3.LinkList{}),
			"read another Secret":         limited.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "cluster-credentials-other"}, &corev1.Secret{}),
			"read the gateway's identity": limited.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-identity-issuer-other"}, &corev1.Secret{}),
			"list Services":               limited.List(ctx, &corev1.ServiceList{}),
			"patch the gateway":           limited.Patch(ctx, linkerdGateway(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`))),
			"label a namespace":           limited.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`))),
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

	t.Run("a root rotation keeps the Links in every phase", func(t *testing.T) {
		before := map[string]string{"local": linkVersions(t, e.local, "east"), "east": linkVersions(t, e.east, "local")}
		f := e.get(t)
		base := f.DeepCopy()
		f.Spec.Rotation.Trigger = "r1"
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "rotation completed with Links in place", func() error {
			f := e.get(t)
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				t.Fatalf("links lost during rotation phase %+v: %+v", f.Status.Rotation, c)
			}
			if f.Status.Rotation == nil || f.Status.Rotation.Phase != meshv1alpha1.RotationCompleted {
				return testenv.Errorf("rotation %+v", f.Status.Rotation)
			}
			return nil
		})
		after := map[string]string{"local": linkVersions(t, e.local, "east"), "east": linkVersions(t, e.east, "local")}
		if before["local"] != after["local"] || before["east"] != after["east"] {
			t.Fatalf("the rotation rewrote Links or credentials: %v -> %v", before, after)
		}
	})

	t.Run("a lost member holds only its own pair", func(t *testing.T) {
		before := linkVersions(t, e.local, "east")
		e.eastProxy.cut()
		restarted := false
		defer func() {
			if !restarted {
				_ = e.eastProxy.start()
			}
		}()
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "poke-lost"}})
		testenv.Eventually(t, 30*time.Second, "east reported lost", func() error {
			f := e.get(t)
			if p := peer(memberSvc(f, "local"), "east"); p.Linked || p.Message != "east does not answer; local keeps the credentials it holds" {
				return testenv.Errorf("local -> east %+v", p)
			}
			return nil
		})
		if got, want := strings.Join(linkObjectsOf(t, e.local), " "), strings.ReplaceAll(linkHeld, "%[1]s", "east"); got != want {
			t.Fatalf("local holds %s while east is lost, want %s", got, want)
		}
		l := &linkv1alpha3.Link{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "east"}, l); err != nil || l.Spec.GatewayAddress != "127.96.2.2" {
			t.Fatalf("local's Link to east while east is lost: %+v %v", l.Spec, err)
		}
		if after := linkVersions(t, e.local, "east"); strings.Split(after, "/")[1] != strings.Split(before, "/")[1] {
			t.Fatalf("credentials rewritten while east is lost: %s -> %s", before, after)
		}
		restarted = true
		if err := e.eastProxy.start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "east back", func() error {
			f := e.get(t)
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			return nil
		})
	})

	t.Run("gateway-less mode: Links without a gateway for a flat network", func(t *testing.T) {
		f := e.get(t)
		base := f.DeepCopy()
		f.Spec.Services.EastWestGateway = ptr(false)
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "gateway-less Links", func() error {
			for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
				peerName := map[string]string{"local": "east", "east": "local"}[name]
				l := &linkv1alpha3.Link{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: peerName}, l); err != nil {
					return err
				}
				if l.Spec.GatewayAddress != "" || l.Spec.GatewayIdentity != "" || l.Spec.Selector != nil || l.Spec.ProbeSpec.Path != "" ||
					l.Spec.RemoteDiscoverySelector.MatchLabels["mirror.linkerd.io/exported"] != "remote-discovery" {
					return testenv.Errorf("%s: Link %+v", name, l.Spec)
				}
			}
			f := e.get(t)
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			return nil
		})
	})

	t.Run("deleting the federation removes exactly what it created, never the extension or the trust", func(t *testing.T) {
		if err := e.local.Delete(ctx, e.get(t)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "federation gone and members clean", func() error {
			if err := e.local.Get(ctx, client.ObjectKey{Name: "mesh"}, &meshv1alpha1.MeshFederation{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
				if got := linkObjectsOf(t, c); len(got) != 0 {
					return testenv.Errorf("%s holds %v", name, got)
				}
			}
			return nil
		})
		for name, c := range map[string]client.Client{"local": e.local, "east": e.east} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "linkerd-gateway"}, &corev1.Service{}); err != nil {
				t.Fatalf("%s lost the extension's gateway: %v", name, err)
			}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-identity-trust-roots"}, &corev1.ConfigMap{}); err != nil {
				t.Fatalf("%s lost its trust roots: %v", name, err)
			}
		}
	})
}

// noOpReconciles runs three reconciles of federation mesh with
// write-counting clients on every member and fails on any write.
func noOpReconciles(t *testing.T, localCfg *cluster.Server) {
	var remotes []*testenv.Writes
	wrap := func(c client.Client) client.Client {
		wc, w := testenv.CountWrites(noWatch{c})
		remotes = append(remotes, w)
		return wc
	}
	local, err := client.NewWithWatch(localCfg.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	cl, writes := testenv.CountWrites(local)
	r := &meshfederation.Reconciler{Client: cl, Local: cl, LocalConfig: localCfg.Config, Registry: providers.Registry(),
		Remote: &remote.Cache{Scheme: scheme.New(), Wrap: wrap}, OperatorNamespace: opNS}
	for i := range 3 {
		if i > 0 {
			// Apart by more than a second: a condition set again (not
			// kept) would get a new lastTransitionTime and be a write.
			time.Sleep(1100 * time.Millisecond)
		}
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "mesh"}}); err != nil {
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
}
