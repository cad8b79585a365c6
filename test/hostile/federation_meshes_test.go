package hostile

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// MeshFederation spec.services cases for Linkerd (Links) and Cilium
// (ClusterMesh): cluster IDs, MeshInstall ClusterMesh settings, members a
// mesh cannot connect, foreign objects of the names Linkerd federation
// writes, and a multicluster extension that is not installed.

// memberServicesCond waits until member's ServicesConnected at f's
// generation has reason and message want, and returns it.
func memberServicesCond(h *H, f *meshv1alpha1.MeshFederation, member, reason, want string) {
	h.Helper()
	h.Eventually(member+" ServicesConnected", func() error {
		h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f))
		for _, c := range f.Status.Clusters {
			if c.Name != member {
				continue
			}
			mc := apimeta.FindStatusCondition(c.Conditions, meshv1alpha1.ServicesConnectedCondition)
			if mc != nil && mc.ObservedGeneration == f.Generation && mc.Reason == reason && mc.Message == want {
				return nil
			}
			return testenv.Errorf("%s ServicesConnected %+v, want %s %q", member, mc, reason, want)
		}
		return testenv.Errorf("no status of %s", member)
	})
}

// noClusterMeshSettings asserts no MeshInstall of the API server holds
// ClusterMesh settings.
func noClusterMeshSettings(h *H) {
	h.Helper()
	var list meshv1alpha1.MeshInstallList
	h.Must(h.C.List(h.Ctx, &list))
	for _, mi := range list.Items {
		if mi.Spec.Cilium != nil && mi.Spec.Cilium.ClusterMesh != nil {
			h.Fatalf("MeshInstall %s holds ClusterMesh settings %+v", mi.Name, mi.Spec.Cilium.ClusterMesh)
		}
	}
}

// ciliumFederation is a federation of the local Cilium member, its
// control plane (and trust material) in ns, with spec.services and the
// given cluster ID.
func ciliumFederation(id int32, ns string) *meshv1alpha1.MeshFederation {
	f := GoodFederation(meshv1alpha1.ProviderCilium)
	f.Spec.Clusters[0].ClusterID = id
	f.Spec.Clusters[0].Namespace = ns
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
	return f
}

func init() {
	registerClusterMeshCases()
	registerClusterMeshInstallCases()
	registerLinkerdLinkCases()
}

// registerClusterMeshCases: Cilium members ClusterMesh cannot connect.
func registerClusterMeshCases() {
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Cilium, Name: "services: Cilium member without a clusterID",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			f := ciliumFederation(0, ns)
			h.Create(f)
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason,
				"local: spec.clusters[local].clusterID is not set: Cilium ClusterMesh needs a cluster.id from 1 to 255, unique across the members")
			h.Stalled(f, meshv1alpha1.UnsupportedFeatureReason, "spec.services: no member's mesh can federate services with Meshplane (local (Cilium))")
			h.Condition(f, meshv1alpha1.DistributedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
			// Trust is shared (meshplane-clustermesh-ca in ns); nothing of ClusterMesh is written.
			noClusterMeshSettings(h)
			controlServices(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Cilium, Name: "services: two Cilium members with one clusterID are both refused, named",
		Run: func(h *H) {
			f := ciliumFederation(7, h.Namespace(AnyMesh))
			f.Spec.Clusters = append(f.Spec.Clusters, meshv1alpha1.MemberCluster{Name: "east", Provider: meshv1alpha1.ProviderCilium, ClusterID: 7,
				KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "hostile-missing-east"}})
			h.Create(f)
			want := "spec.clusters: local and east both have clusterID 7; ClusterMesh needs a cluster ID unique across the members (1-255)"
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason, "local: "+want)
			memberServicesCond(h, f, "east", meshv1alpha1.UnsupportedFeatureReason, "east: "+want)
			noClusterMeshSettings(h)
			controlServices(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
	for _, id := range []int32{256, -3} {
		Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: Cilium, Name: fmt.Sprintf("services: clusterID %d", id),
			Run: func(h *H) {
				f := ciliumFederation(id, "")
				bound := "should be less than or equal to 255"
				if id < 1 {
					bound = "should be greater than or equal to 1"
				}
				h.Refused(f, "spec.clusters[0].clusterID", bound)
			}})
	}
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Cilium, Isolated: true, Name: "services: Cilium member running Istio ambient alongside",
		Run: func(h *H) {
			h.Create(&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
				Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Suspend: true}})
			h.Create(&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
				Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient, Suspend: true}})
			h.StartManager()
			f := ciliumFederation(1, "")
			h.Create(f)
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason,
				"local: cluster local also runs Istio ambient (MeshInstall istio): ztunnel's mTLS is not compatible with Cilium ClusterMesh, so the member is not connected")
			noClusterMeshSettings(h)
			// Without the ambient install the member connects.
			h.Must(h.C.Delete(h.Ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}))
			h.Must(h.Update(f, func() { f.Spec.Services.MeshID = "woken" }))
			h.Eventually("settings written", func() error {
				mi := &meshv1alpha1.MeshInstall{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: "cilium"}, mi))
				if mi.Spec.Cilium == nil || mi.Spec.Cilium.ClusterMesh == nil || mi.Spec.Cilium.ClusterMesh.ClusterID != 1 || mi.Spec.Cilium.ClusterMesh.ClusterName != "local" {
					return testenv.Errorf("spec.cilium %+v", mi.Spec.Cilium)
				}
				return nil
			})
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("settings removed, MeshInstall kept", func() error {
				mi := &meshv1alpha1.MeshInstall{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: "cilium"}, mi))
				if mi.Spec.Cilium != nil && mi.Spec.Cilium.ClusterMesh != nil {
					return testenv.Errorf("spec.cilium.clusterMesh %+v", mi.Spec.Cilium.ClusterMesh)
				}
				return nil
			})
		}})
}

// registerClusterMeshInstallCases: ClusterMesh settings on a MeshInstall
// the API server refuses.
func registerClusterMeshInstallCases() {
	peer := func(p meshv1alpha1.CiliumClusterMeshPeer) *meshv1alpha1.CiliumClusterMesh {
		return &meshv1alpha1.CiliumClusterMesh{ClusterName: "east", ClusterID: 2, Peers: []meshv1alpha1.CiliumClusterMeshPeer{p}}
	}
	for _, c := range []struct {
		name     string
		provider meshv1alpha1.Provider
		cm       *meshv1alpha1.CiliumClusterMesh
		want     []string
	}{
		{"peer with address and ips", meshv1alpha1.ProviderCilium, peer(meshv1alpha1.CiliumClusterMeshPeer{Name: "west", Address: "w.example", IPs: []string{"127.96.1.1"}, Port: 2379}),
			[]string{"set exactly one of address and ips"}},
		{"peer with neither address nor ips", meshv1alpha1.ProviderCilium, peer(meshv1alpha1.CiliumClusterMeshPeer{Name: "west", Port: 2379}),
			[]string{"set exactly one of address and ips"}},
		{"cluster name of 33 characters", meshv1alpha1.ProviderCilium, &meshv1alpha1.CiliumClusterMesh{ClusterName: strings.Repeat("a", 33), ClusterID: 2},
			[]string{"spec.cilium.clusterMesh.clusterName", "may not be more than 32"}},
		{"cluster id 300", meshv1alpha1.ProviderCilium, &meshv1alpha1.CiliumClusterMesh{ClusterName: "east", ClusterID: 300},
			[]string{"spec.cilium.clusterMesh.clusterID", "should be less than or equal to 255"}},
		{"peer port 0", meshv1alpha1.ProviderCilium, peer(meshv1alpha1.CiliumClusterMeshPeer{Name: "west", Address: "w.example"}),
			[]string{"spec.cilium.clusterMesh.peers[0].port", "should be greater than or equal to 1"}},
		{"ClusterMesh settings on an Istio install", meshv1alpha1.ProviderIstio, &meshv1alpha1.CiliumClusterMesh{ClusterName: "east", ClusterID: 2},
			[]string{"spec.cilium may only be set when provider is Cilium"}},
	} {
		Register(Case{Category: "refused-create", Kind: "MeshInstall", Mesh: Cilium, Name: "clusterMesh: " + c.name,
			Run: func(h *H) {
				version := "1.19.5"
				if c.provider == meshv1alpha1.ProviderIstio {
					version = "1.28.1"
				}
				mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hostile-cm-%d", fedSeq.Add(1))},
					Spec: meshv1alpha1.MeshInstallSpec{Provider: c.provider, Version: version, Suspend: true,
						Cilium: &meshv1alpha1.CiliumInstallSpec{ClusterMesh: c.cm}}}
				h.Refused(mi, c.want...)
			}})
	}
}

// registerLinkerdLinkCases: a Linkerd member on its own API server (the
// multicluster extension's namespace is one per cluster).
func registerLinkerdLinkCases() {
	linkerdFederation := func() *meshv1alpha1.MeshFederation {
		f := GoodFederation(meshv1alpha1.ProviderLinkerd)
		f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
		return f
	}
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Linkerd, Isolated: true, Name: "services: Linkerd member without the multicluster extension",
		Run: func(h *H) {
			crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "links.multicluster.linkerd.io"}}
			h.Must(h.C.Delete(h.Ctx, crd))
			// A CRD's deletion waits for the API server to remove its
			// stored objects and stop serving it: slow on a loaded machine.
			testenv.Eventually(h.T, 3*testenv.DefaultTimeout, "Link CRD gone", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(crd), crd); !apierrors.IsNotFound(err) {
					return testenv.Errorf("still there: %v", err)
				}
				return nil
			})
			h.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}})
			h.StartManager()
			f := linkerdFederation()
			h.Create(f)
			want := "local: the Linkerd multicluster extension is not installed in cluster local (no Link kind multicluster.linkerd.io/v1alpha3): " +
				"set spec.linkerd.multicluster on its MeshInstall (gateway: true, links: the peers' names), or install the linkerd-multicluster chart into namespace linkerd-multicluster (gateway.enabled=true), listing each peer in its controllers values (controllers[].link.ref.name)"
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason, want)
			h.Stalled(f, meshv1alpha1.UnsupportedFeatureReason, "spec.services: no member's mesh can federate services with Meshplane (local (Linkerd))")
			var sas corev1.ServiceAccountList
			h.Must(h.C.List(h.Ctx, &sas, client.MatchingLabels{"meshplane.io/owner": "meshfederation.." + f.Name}))
			if len(sas.Items) != 0 {
				h.Fatalf("a refused member holds %d ServiceAccounts", len(sas.Items))
			}
		}})
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Linkerd, Isolated: true, Name: "services: foreign remote-access ServiceAccount of the reader's name",
		Run: func(h *H) {
			h.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}})
			h.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-multicluster"}})
			foreign := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "linkerd-service-mirror-remote-access-meshplane",
				Labels: map[string]string{"linkerd.io/extension": "multicluster"}}}
			h.Create(foreign)
			snap := h.Snapshot(foreign)
			h.StartManager()
			f := linkerdFederation()
			h.Create(f)
			h.Eventually("Conflict naming the ServiceAccount", func() error {
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f))
				for _, c := range f.Status.Clusters {
					mc := apimeta.FindStatusCondition(c.Conditions, meshv1alpha1.ServicesConnectedCondition)
					if c.Name == "local" && mc != nil && mc.Reason == meshv1alpha1.ConflictReason &&
						strings.Contains(mc.Message, "linkerd-multicluster/linkerd-service-mirror-remote-access-meshplane") {
						return nil
					}
				}
				return testenv.Errorf("clusters %+v", f.Status.Clusters)
			})
			h.Unchanged(snap)
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("federation gone", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f); !apierrors.IsNotFound(err) {
					return testenv.Errorf("still there: %v", err)
				}
				return nil
			})
			h.Unchanged(snap)
		}})
}
