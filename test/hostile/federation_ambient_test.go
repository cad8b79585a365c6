package hostile

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Istio ambient multi-network federation (an istio-east-west Gateway on
// HBONE 15008, topology settings in the member's MeshInstall): members
// its Istio cannot federate, an ambient member without the east-west
// gateway, a GitOps tool holding the settings and a foreign Gateway of the
// gateway's name. Each case runs on its own API server: the Istio
// MeshInstall that makes the member ambient is one per cluster.

func init() {
	registerAmbientRefusalCases()
	registerAmbientConflictCases()
}

// ambientMeshInstall is a suspended Istio MeshInstall named istio with
// profile Ambient at version v.
func ambientMeshInstall(v string) *meshv1alpha1.MeshInstall {
	return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: v, Profile: meshv1alpha1.ProfileAmbient, Suspend: true}}
}

// eastWestGateways names the Gateway API Gateways f holds in ns.
func eastWestGateways(h *H, f *meshv1alpha1.MeshFederation, ns string) []string {
	h.Helper()
	var l gatewayv1.GatewayList
	h.Must(h.C.List(h.Ctx, &l, client.InNamespace(ns), client.MatchingLabels{"meshplane.io/owner": "meshfederation.." + f.Name}))
	var out []string
	for _, g := range l.Items {
		out = append(out, g.Name)
	}
	return out
}

// noAmbientOutputs asserts f holds nothing of service federation in ns
// (no sidecar or ambient gateway, no reader) and the MeshInstall is as
// snap recorded it.
func noAmbientOutputs(h *H, f *meshv1alpha1.MeshFederation, ns string, snap *Snapshot) {
	h.Helper()
	noServicesOutputs(h, f, ns, "")
	if gws := eastWestGateways(h, f, ns); len(gws) != 0 {
		h.Fatalf("ambient east-west Gateways written: %v", gws)
	}
	h.Unchanged(snap)
}

// trustControl is a valid trust-only federation of its own namespace: a
// refused member stops nothing else.
func trustControl(h *H) {
	h.Helper()
	control := GoodFederation(meshv1alpha1.ProviderIstio)
	control.Spec.Clusters[0].Namespace = h.Namespace(AnyMesh)
	h.Create(control)
	h.Ready(control)
	h.Must(h.C.Delete(h.Ctx, control))
}

func registerAmbientRefusalCases() {
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "services: Istio ambient member on 1.26 (before ambient multicluster)",
		Run: func(h *H) {
			mi := ambientMeshInstall("1.26.3")
			h.Create(mi)
			snap := h.Snapshot(mi)
			h.StartManager()
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
			h.Create(f)
			want := "local: MeshInstall istio installs Istio 1.26.3 with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
				"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason, want)
			h.Stalled(f, meshv1alpha1.UnsupportedFeatureReason, "spec.services: no member's mesh can federate services with Meshplane (local (Istio))")
			noAmbientOutputs(h, f, ns, snap)
			trustControl(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
	Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "services: Istio ambient member with eastWestGateway false (flat network)",
		Run: func(h *H) {
			mi := ambientMeshInstall("1.28.1")
			h.Create(mi)
			snap := h.Snapshot(mi)
			h.StartManager()
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			h.Create(f)
			want := "local: MeshInstall istio installs Istio with profile Ambient and spec.services.eastWestGateway is false: Istio supports ambient multicluster on different networks only, " +
				"through an istio-east-west gateway on HBONE port 15008; remove spec.services.eastWestGateway (or set it true), or use profile Sidecar for a flat network"
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason, want)
			h.Stalled(f, meshv1alpha1.UnsupportedFeatureReason, "spec.services: no member's mesh can federate services with Meshplane (local (Istio))")
			noAmbientOutputs(h, f, ns, snap)
			trustControl(h)
			// With the gateway the member federates: the Gateway and the
			// settings land, and leave with the federation.
			h.Must(h.Update(f, func() { f.Spec.Services.EastWestGateway = nil }))
			h.Eventually("ambient gateway and settings written", func() error {
				got := &meshv1alpha1.MeshInstall{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: "istio"}, got))
				if got.Spec.Istio == nil || got.Spec.Istio.Network != "local" || got.Spec.Istio.ClusterName != "local" {
					return testenv.Errorf("spec.istio %+v", got.Spec.Istio)
				}
				if gws := eastWestGateways(h, f, ns); len(gws) != 1 || gws[0] != "istio-ambient-eastwestgateway" {
					return testenv.Errorf("gateways %v", gws)
				}
				return nil
			})
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("settings removed, MeshInstall kept", func() error {
				got := &meshv1alpha1.MeshInstall{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: "istio"}, got))
				if got.Spec.Istio != nil || len(got.Spec.Components) != 0 {
					return testenv.Errorf("MeshInstall keeps %+v %+v", got.Spec.Istio, got.Spec.Components)
				}
				if gws := eastWestGateways(h, f, ns); len(gws) != 0 {
					return testenv.Errorf("gateways %v", gws)
				}
				return nil
			})
			h.Unchanged(snap)
		}})
}

// applyInstallAs server-side applies MeshInstall istio's spec as field
// manager manager (a GitOps tool owning it).
func applyInstallAs(h *H, spec map[string]any, manager string) {
	h.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind("MeshInstall"))
	u.SetName("istio")
	h.Must(h.C.Apply(h.Ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(manager), client.ForceOwnership))
}

func registerAmbientConflictCases() {
	Register(Case{Category: "conflict", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "services: GitOps tool holds the ambient member's network",
		Run: func(h *H) {
			var spec map[string]any
			b, _ := json.Marshal(ambientMeshInstall("1.28.1").Spec)
			h.Must(json.Unmarshal(b, &spec))
			spec["istio"] = map[string]any{"network": "gitops-net"}
			applyInstallAs(h, spec, "argocd-controller")
			mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}
			snap := h.Snapshot(mi)
			h.StartManager()
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
			h.Create(f)
			h.Stalled(f, meshv1alpha1.ConflictReason, "cluster local: the settings this federation writes into MeshInstall istio are set by another field manager",
				`conflict with "argocd-controller"`, ".spec.istio.network")
			h.Unchanged(snap)
			trustControl(h)
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("federation gone", func() error {
				err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), &meshv1alpha1.MeshFederation{})
				if err == nil {
					return fmt.Errorf("federation %s still there", f.Name)
				}
				return client.IgnoreNotFound(err)
			})
			noAmbientOutputs(h, f, ns, snap)
		}})
	Register(Case{Category: "conflict", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "services: foreign istio-east-west Gateway of the ambient gateway's name",
		Run: func(h *H) {
			mi := ambientMeshInstall("1.28.1")
			h.Create(mi)
			ns := h.Namespace(AnyMesh)
			gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio-ambient-eastwestgateway"},
				Spec: gatewayv1.GatewaySpec{GatewayClassName: "istio-east-west",
					Listeners: []gatewayv1.Listener{{Name: "mine", Port: 15008, Protocol: "HBONE"}}}}
			h.Create(gw)
			snap := h.Snapshot(mi, gw)
			h.StartManager()
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
			h.Create(f)
			want := fmt.Sprintf("cluster local: Gateway %s/istio-ambient-eastwestgateway already exists and was not created by Meshplane; it is never taken over", ns)
			h.Stalled(f, meshv1alpha1.ConflictReason, "services are not connected: "+want)
			noServicesOutputs(h, f, ns, "")
			h.Unchanged(snap)
			trustControl(h)
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("federation gone", func() error {
				err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), &meshv1alpha1.MeshFederation{})
				if err == nil {
					return fmt.Errorf("federation %s still there", f.Name)
				}
				return client.IgnoreNotFound(err)
			})
			h.Unchanged(snap)
		}})
}
