package hostile

import (
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Istio primary-remote (spec.clusters[].primary): a primary that is not a
// member, names the member itself, is itself a remote or does not run
// Istio, primary on a member of another mesh (each refused by the API
// server, nothing stored); a remote in ambient mode, and a remote whose
// primary has no east-west gateway (each refused on the member, nothing
// written). The member named east never answers (its kubeconfig Secret
// does not exist): what is refused is refused from the spec and the local
// install alone.

func init() {
	registerPrimaryRemoteSpecCases()
	registerPrimaryRemoteMemberCases()
}

// primaryFederation is a services federation of local (its control plane
// in ns) and east (provider p, never answering), local a remote of east.
func primaryFederation(ns string, p meshv1alpha1.Provider, gateway bool) *meshv1alpha1.MeshFederation {
	f := servicesFederation(meshv1alpha1.ProviderIstio, ns, gateway)
	f.Spec.Clusters[0].Primary = "east"
	f.Spec.Clusters = append(f.Spec.Clusters, meshv1alpha1.MemberCluster{Name: "east", Provider: p,
		KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "hostile-missing-east"}})
	return f
}

const (
	primaryNotMember = "spec.clusters[].primary must name another member of this federation whose provider is Istio and which has no primary itself (a remote cannot control a remote)"
	primaryNotIstio  = "spec.clusters[].primary (Istio primary-remote) is for Istio members only; remove primary from the members of other meshes"
)

func registerPrimaryRemoteSpecCases() {
	edits := []struct {
		name string
		edit func(f *meshv1alpha1.MeshFederation)
		want string
	}{
		{"primary names no member", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].Primary = "nowhere" }, primaryNotMember},
		{"primary names the member itself", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].Primary = "local" }, primaryNotMember},
		{"primary is itself a remote", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[1].Primary = "local" }, primaryNotMember},
		{"primary runs Linkerd", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[1].Provider = meshv1alpha1.ProviderLinkerd }, primaryNotMember},
		{"a Cilium member with a primary", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Clusters[0].Provider = meshv1alpha1.ProviderCilium
			f.Spec.Clusters[0].ClusterID = 1
		}, primaryNotIstio},
		{"primary is not a DNS label", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].Primary = "East_1" }, "spec.clusters[0].primary"},
	}
	for _, e := range edits {
		Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: Istio, Name: "primary-remote: create with " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(AnyMesh)
				f := primaryFederation(ns, meshv1alpha1.ProviderIstio, true)
				e.edit(f)
				h.Refused(f, e.want)
				noPrimaryRemoteOutputs(h, f, ns)
			}})
	}
}

// noPrimaryRemoteOutputs asserts f holds nothing of service federation
// in ns: no east-west gateway, reader, remote secret, istiod-gateway or
// istiod-vs, and no network label.
func noPrimaryRemoteOutputs(h *H, f *meshv1alpha1.MeshFederation, ns string) {
	h.Helper()
	noServicesOutputs(h, f, ns, "")
	var vss istionetworking.VirtualServiceList
	h.Must(h.C.List(h.Ctx, &vss, client.InNamespace(ns), client.MatchingLabels{"meshplane.io/owner": "meshfederation.." + f.Name}))
	if len(vss.Items) != 0 {
		h.Fatalf("VirtualServices written: %d", len(vss.Items))
	}
}

func registerPrimaryRemoteMemberCases() {
	const ambientFix = "Istio does not support primary-remote in ambient mode (ambient multicluster is multi-primary on different networks only); " +
		"remove primary (the member then runs its own istiod), or use profile Sidecar on both"
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "primary-remote: a remote in ambient mode",
		Run: func(h *H) {
			mi := ambientMeshInstall("1.28.1")
			h.Create(mi)
			snap := h.Snapshot(mi)
			h.StartManager()
			ns := h.Namespace(AnyMesh)
			f := primaryFederation(ns, meshv1alpha1.ProviderIstio, true)
			h.Create(f)
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason,
				"local: spec.clusters[local].primary is east, but local runs Istio in ambient mode: "+ambientFix)
			noPrimaryRemoteOutputs(h, f, ns)
			noAmbientOutputs(h, f, ns, snap)
			trustControl(h)
			h.Must(h.C.Delete(h.Ctx, f))
			h.Unchanged(snap)
		}})
	Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: Istio,
		Name: "primary-remote: the primary has no east-west gateway (eastWestGateway false)",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			f := primaryFederation(ns, meshv1alpha1.ProviderIstio, false)
			h.Create(f)
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason,
				"local: spec.clusters[local].primary is east, but spec.services.eastWestGateway is false: a remote reaches its primary's istiod only through the primary's "+
					"east-west gateway (ports 15012 and 15017); remove spec.services.eastWestGateway (or set it true)")
			noPrimaryRemoteOutputs(h, f, ns)
			controlServices(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}
