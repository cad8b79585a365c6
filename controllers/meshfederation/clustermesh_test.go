package meshfederation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// cmEnv is the Cilium ClusterMesh fixture: three Cilium members, each with
// a MeshInstall and a clustermesh-apiserver Service; east and west are
// reached through kubeconfigs bound to RemoteRBAC and RemoteServicesRBAC.
type cmEnv struct {
	local, east, west client.Client
	localCfg          *cluster.Server
	eastProxy         *tcpProxy
	members           map[string]client.Client
}

func ciliumInstall(values string) *meshv1alpha1.MeshInstall {
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5"}}
	if values != "" {
		mi.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(values)}
	}
	return mi
}

func clusterMeshAPIServer() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "clustermesh-apiserver"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"k8s-app": "clustermesh-apiserver"},
			Ports: []corev1.ServicePort{{Name: "apiserv", Port: 2379}}}}
}

func setupClusterMesh(t *testing.T) *cmEnv {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Cilium}}})
	reg := providers.Registry()
	cw, _ := reg.FederationTrust(meshv1alpha1.ProviderCilium)
	sf, _ := reg.ServiceFederation(meshv1alpha1.ProviderCilium)
	e := &cmEnv{localCfg: multi.Servers[0]}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	e.members = map[string]client.Client{"local": e.local, "east": e.east, "west": e.west}
	mustCreate(t, e.local, ns(opNS))
	for i, name := range []string{"local", "east", "west"} {
		values := ""
		if name == "east" {
			values = `{"clustermesh":{"policyDefaultLocalCluster":false},"debug":{"enabled":true}}`
		}
		mustCreate(t, e.members[name], ciliumInstall(values), clusterMeshAPIServer())
		svc := clusterMeshAPIServer()
		testenv.Eventually(t, 10*time.Second, "clustermesh-apiserver address", func() error {
			if err := e.members[name].Get(context.Background(), client.ObjectKeyFromObject(svc), svc); err != nil {
				return err
			}
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: fmt.Sprintf("127.96.4.%d", i+1)}}
			return e.members[name].Status().Update(context.Background(), svc)
		})
	}
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	westProxy := newProxy(t, hostPort(t, multi.Servers[2].Config))
	kcs := map[string][]byte{
		"east": remoteKubeconfig(t, multi.Servers[1].Config, cw, e.eastProxy.addr),
		"west": remoteKubeconfig(t, multi.Servers[2].Config, cw, westProxy.addr),
	}
	for name, kc := range kcs {
		mustCreate(t, e.members[name], meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: name}, nil, "meshplane-remote", "meshplane-federation")...)
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: name + "-kubeconfig"}, Data: map[string][]byte{"kubeconfig": kc}})
	}
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

// clusterMeshOf returns a member's MeshInstall's ClusterMesh settings.
func (e *cmEnv) clusterMeshOf(t *testing.T, name string) (*meshv1alpha1.MeshInstall, string) {
	t.Helper()
	mi := &meshv1alpha1.MeshInstall{}
	if err := e.members[name].Get(context.Background(), client.ObjectKey{Name: "cilium"}, mi); err != nil {
		t.Fatal(err)
	}
	if mi.Spec.Cilium == nil || mi.Spec.Cilium.ClusterMesh == nil {
		return mi, ""
	}
	b, _ := json.Marshal(mi.Spec.Cilium.ClusterMesh)
	return mi, string(b)
}

func (e *cmEnv) poke(t *testing.T, name string) {
	t.Helper()
	mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: name}})
}

func (e *cmEnv) get(t *testing.T) *meshv1alpha1.MeshFederation {
	t.Helper()
	f := &meshv1alpha1.MeshFederation{}
	if err := e.local.Get(context.Background(), client.ObjectKey{Name: "mesh"}, f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCiliumClusterMesh connects three Cilium members over real API
// servers through their MeshInstalls' ClusterMesh settings and follows
// them through a duplicate cluster ID, the exchange of endpoints, the
// policy-default-local-cluster report, minimal RBAC, no-op reconciles, a
// lost member, an ambient Istio alongside, and removal.
func TestCiliumClusterMesh(t *testing.T) {
	e := setupClusterMesh(t)
	ctx := context.Background()
	f := federation("mesh")
	for i := range f.Spec.Clusters {
		f.Spec.Clusters[i].Provider = meshv1alpha1.ProviderCilium
		f.Spec.Clusters[i].ClusterID = int32(i + 1)
	}
	f.Spec.Clusters[2].ClusterID = 2
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
	mustCreate(t, e.local, f)
	const dup = "spec.clusters: east and west both have clusterID 2; ClusterMesh needs a cluster ID unique across the members (1-255)"

	t.Run("a duplicate cluster ID refuses both members, naming them", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "east and west refused", func() error {
			f := e.get(t)
			for _, name := range []string{"east", "west"} {
				if c := memberCondition(f, name, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Reason != meshv1alpha1.UnsupportedFeatureReason || c.Message != name+": "+dup {
					return testenv.Errorf("%s ServicesConnected %+v", name, c)
				}
			}
			if p := peer(memberSvc(f, "local"), "east"); p.Linked || p.Message != "east: "+dup {
				return testenv.Errorf("local -> east %+v", p)
			}
			return nil
		})
		if _, got := e.clusterMeshOf(t, "local"); got != `{"clusterName":"local","clusterID":1}` {
			t.Fatalf("local's settings %s", got)
		}
		for _, name := range []string{"east", "west"} {
			if _, got := e.clusterMeshOf(t, name); got != "" {
				t.Fatalf("%s holds settings while refused: %s", name, got)
			}
		}
	})

	t.Run("unique IDs: every member gets its name, id and the peers' endpoints", func(t *testing.T) {
		f := e.get(t)
		base := f.DeepCopy()
		f.Spec.Clusters[2].ClusterID = 3
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		want := map[string]string{
			"local": `{"clusterName":"local","clusterID":1,"peers":[{"name":"east","ips":["127.96.4.2"],"port":2379},{"name":"west","ips":["127.96.4.3"],"port":2379}]}`,
			"east":  `{"clusterName":"east","clusterID":2,"peers":[{"name":"local","ips":["127.96.4.1"],"port":2379},{"name":"west","ips":["127.96.4.3"],"port":2379}]}`,
			"west":  `{"clusterName":"west","clusterID":3,"peers":[{"name":"east","ips":["127.96.4.2"],"port":2379},{"name":"local","ips":["127.96.4.1"],"port":2379}]}`,
		}
		testenv.Eventually(t, 30*time.Second, "ClusterMesh settings and ServicesConnected", func() error {
			for name, w := range want {
				if _, got := e.clusterMeshOf(t, name); got != w {
					return testenv.Errorf("%s: %s", name, got)
				}
			}
			f := e.get(t)
			if c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue ||
				c.ObservedGeneration != f.Generation {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			for _, name := range []string{"local", "east", "west"} {
				if p := peer(memberSvc(f, name), "east"); name != "east" && !p.Linked {
					return testenv.Errorf("%s -> east %+v", name, p)
				}
				if memberCondition(f, name, meshv1alpha1.CrossClusterPolicyCondition) == nil {
					return testenv.Errorf("%s has no CrossClusterPolicy", name)
				}
			}
			return nil
		})
		f = e.get(t)
		if s := memberSvc(f, "east"); s.GatewayAddress != "127.96.4.2" || s.ClusterMeshInstall != "cilium" {
			t.Fatalf("east %+v", s)
		}
		// The user's fields stay the user's; the settings have a field
		// manager of their own.
		mi, _ := e.clusterMeshOf(t, "east")
		if !strings.Contains(string(mi.Spec.Values.Raw), `"debug":{"enabled":true}`) {
			t.Fatalf("east's values changed: %s", mi.Spec.Values.Raw)
		}
		managers := map[string]bool{}
		for _, mf := range mi.ManagedFields {
			managers[mf.Manager] = true
		}
		if !managers[meshfederation.ClusterMeshFieldManager] {
			t.Fatalf("field managers %v", managers)
		}
		local := memberCondition(f, "local", meshv1alpha1.CrossClusterPolicyCondition)
		if local == nil || local.Status != metav1.ConditionFalse || local.Reason != meshv1alpha1.LocalClusterPolicyDefaultReason ||
			local.Message != "clustermesh.policyDefaultLocalCluster is true (the default of Cilium 1.19.5) in MeshInstall cilium: network policies without a cluster selector "+
				"select endpoints of this cluster only; add io.cilium.k8s.policy.cluster to cross-cluster rules, or set the value to false" {
			t.Fatalf("local CrossClusterPolicy %+v", local)
		}
		if east := memberCondition(f, "east", meshv1alpha1.CrossClusterPolicyCondition); east == nil || east.Status != metav1.ConditionTrue ||
			!strings.Contains(east.Message, "is false (set in spec.values)") {
			t.Fatalf("east CrossClusterPolicy %+v", east)
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
			"create a MeshInstall":  limited.Create(ctx, ciliumInstall("")),
			"delete a MeshInstall":  limited.Delete(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"}}),
			"read another Service":  limited.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "hubble-relay"}, &corev1.Service{}),
			"patch its Service":     limited.Patch(ctx, clusterMeshAPIServer(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`))),
			"read the cluster mesh": limited.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "cilium-clustermesh"}, &corev1.Secret{}),
			"list Services":         limited.List(ctx, &corev1.ServiceList{}),
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

	t.Run("a lost member holds only its own pair", func(t *testing.T) {
		_, before := e.clusterMeshOf(t, "local")
		e.eastProxy.cut()
		restarted := false
		defer func() {
			if !restarted {
				_ = e.eastProxy.start()
			}
		}()
		e.poke(t, "poke-lost")
		testenv.Eventually(t, 30*time.Second, "east reported lost", func() error {
			f := e.get(t)
			if p := peer(memberSvc(f, "local"), "east"); p.Linked || p.Message != "east does not answer; local keeps the endpoint it holds" {
				return testenv.Errorf("local -> east %+v", p)
			}
			if p := peer(memberSvc(f, "west"), "local"); !p.Linked {
				return testenv.Errorf("west -> local %+v", p)
			}
			return nil
		})
		if _, after := e.clusterMeshOf(t, "local"); after != before {
			t.Fatalf("local's settings changed while east is lost: %s -> %s", before, after)
		}
		restarted = true
		if err := e.eastProxy.start(); err != nil {
			t.Fatal(err)
		}
		e.poke(t, "poke-back")
		testenv.Eventually(t, 30*time.Second, "east back", func() error {
			if c := apimeta.FindStatusCondition(e.get(t).Status.Conditions, meshv1alpha1.ServicesConnectedCondition); c == nil || c.Status != metav1.ConditionTrue {
				return testenv.Errorf("ServicesConnected %+v", c)
			}
			return nil
		})
	})

	t.Run("Istio ambient alongside refuses the member and removes its settings", func(t *testing.T) {
		amb := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient}}
		mustCreate(t, e.west, amb)
		e.poke(t, "poke-ambient")
		want := "west: cluster west also runs Istio ambient (MeshInstall istio): ztunnel's mTLS is not compatible with Cilium ClusterMesh, so the member is not connected"
		testenv.Eventually(t, 30*time.Second, "west refused", func() error {
			f := e.get(t)
			if c := memberCondition(f, "west", meshv1alpha1.ServicesConnectedCondition); c == nil || c.Message != want {
				return testenv.Errorf("west %+v", c)
			}
			if _, got := e.clusterMeshOf(t, "west"); got != "" {
				return testenv.Errorf("west holds %s", got)
			}
			if _, got := e.clusterMeshOf(t, "local"); strings.Contains(got, `"west"`) {
				return testenv.Errorf("local still reaches west: %s", got)
			}
			return nil
		})
		if err := e.west.Delete(ctx, amb); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("removing spec.services removes exactly the settings, never the MeshInstall", func(t *testing.T) {
		f := e.get(t)
		base := f.DeepCopy()
		f.Spec.Services = nil
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "settings removed", func() error {
			for name := range e.members {
				if _, got := e.clusterMeshOf(t, name); got != "" {
					return testenv.Errorf("%s holds %s", name, got)
				}
			}
			return nil
		})
		mi, _ := e.clusterMeshOf(t, "east")
		if !strings.Contains(string(mi.Spec.Values.Raw), `"debug":{"enabled":true}`) || mi.Spec.Version != "1.19.5" {
			t.Fatalf("east's MeshInstall changed: %+v", mi.Spec)
		}
		testenv.Eventually(t, 30*time.Second, "status without services", func() error {
			if f := e.get(t); memberSvc(f, "local") != nil {
				return testenv.Errorf("status keeps services: %+v", f.Status.Clusters)
			}
			return nil
		})
	})
}
