package hostile

import (
	"fmt"
	"strings"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// MeshFederation spec.services cases: service federation on the local
// member, whose mesh namespace is the case's own namespace (so the cases
// run in parallel), against foreign objects of its names, meshes that
// cannot federate services, and contradictory input.

// servicesFederation is a valid federation of the local cluster running
// provider p with its control plane in ns and spec.services set; gateway
// asks for the east-west gateway.
func servicesFederation(p meshv1alpha1.Provider, ns string, gateway bool) *meshv1alpha1.MeshFederation {
	f := GoodFederation(p)
	f.Spec.Clusters[0].Namespace = ns
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{EastWestGateway: &gateway}
	return f
}

// servicesOutputs lists what service federation of f holds in ns (and its
// cluster-wide reader role), "Kind/name", and ns's network label.
func servicesOutputs(h *H, f *meshv1alpha1.MeshFederation, ns string) (objs []string, network string) {
	h.Helper()
	sel := client.MatchingLabels{"meshplane.io/owner": "meshfederation.." + f.Name}
	lists := map[string]client.ObjectList{"ServiceAccount": &corev1.ServiceAccountList{}, "Service": &corev1.ServiceList{},
		"Deployment": &appsv1.DeploymentList{}, "Gateway": &istionetworking.GatewayList{}}
	for k, l := range lists {
		h.Must(h.C.List(h.Ctx, l, sel, client.InNamespace(ns)))
		items, _ := metaItems(l)
		for _, n := range items {
			objs = append(objs, k+"/"+n)
		}
	}
	for _, o := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}} {
		err := h.C.Get(h.Ctx, client.ObjectKey{Name: "meshplane-istio-reader-" + ns}, o)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			h.Fatal(err)
		case o.GetLabels()["meshplane.io/owner"] == "meshfederation.."+f.Name:
			objs = append(objs, strings.TrimPrefix(fmt.Sprintf("%T", o), "*v1.")+"/"+o.GetName())
		}
	}
	nsObj := &corev1.Namespace{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: ns}, nsObj))
	return objs, nsObj.Labels["topology.istio.io/network"]
}

func metaItems(l client.ObjectList) ([]string, error) {
	var out []string
	switch x := l.(type) {
	case *corev1.ServiceAccountList:
		for _, o := range x.Items {
			out = append(out, o.Name)
		}
	case *corev1.ServiceList:
		for _, o := range x.Items {
			out = append(out, o.Name)
		}
	case *appsv1.DeploymentList:
		for _, o := range x.Items {
			out = append(out, o.Name)
		}
	case *istionetworking.GatewayList:
		for _, o := range x.Items {
			out = append(out, o.Name)
		}
	}
	return out, nil
}

// noServicesOutputs asserts f holds nothing of service federation in ns
// and ns's network label is want.
func noServicesOutputs(h *H, f *meshv1alpha1.MeshFederation, ns, want string) {
	h.Helper()
	objs, network := servicesOutputs(h, f, ns)
	if len(objs) != 0 || network != want {
		h.Fatalf("service federation left %v and network label %q (want none and %q)", objs, network, want)
	}
}

// controlServices is a valid flat-network federation of its own namespace,
// Ready with ServicesConnected=True: one bad federation stops nothing else.
func controlServices(h *H) {
	h.Helper()
	ns := h.Namespace(AnyMesh)
	f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
	h.Create(f)
	h.Ready(f)
	h.Condition(f, meshv1alpha1.ServicesConnectedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
	h.Must(h.C.Delete(h.Ctx, f))
}

func init() {
	registerServicesSpecCases()
	registerServicesConflictCases()
	registerServicesMeshCases()
	registerServicesLifecycleCases()
}

func registerServicesSpecCases() {
	long := strings.Repeat("a", 64)
	edits := []struct {
		name string
		edit func(f *meshv1alpha1.MeshFederation)
		want []string
	}{
		{"apiServer over plain http", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].APIServer = "http://10.0.0.1:6443" },
			[]string{"spec.clusters[0].apiServer", "apiServer must be an https:// URL without user info, query or fragment"}},
		{"apiServer with user info", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Clusters[0].APIServer = "https://admin:secret@10.0.0.1:6443"
		}, []string{"apiServer must be an https:// URL without user info, query or fragment"}},
		{"apiServer with a query", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].APIServer = "https://10.0.0.1:6443/?x=1" },
			[]string{"apiServer must be an https:// URL without user info, query or fragment"}},
		{"apiServer with a fragment", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].APIServer = "https://10.0.0.1:6443/#a" },
			[]string{"apiServer must be an https:// URL without user info, query or fragment"}},
		{"apiServer without a host", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].APIServer = "https://" },
			[]string{"apiServer must be an https:// URL without user info, query or fragment"}},
		{"apiServer of 300 characters", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Clusters[0].APIServer = "https://" + strings.Repeat("a", 292)
		}, []string{"spec.clusters[0].apiServer", "may not be more than 253"}},
		{"network in upper case", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].Network = "Net1" },
			[]string{"spec.clusters[0].network", "should match"}},
		{"network of 64 characters", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].Network = long },
			[]string{"spec.clusters[0].network", "may not be more than 63"}},
		{"network ending in a dash", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters[0].Network = "net-" },
			[]string{"spec.clusters[0].network", "should match"}},
		{"meshID with a slash", func(f *meshv1alpha1.MeshFederation) { f.Spec.Services.MeshID = "mesh/1" },
			[]string{"spec.services.meshID", "should match"}},
		{"meshID of 64 characters", func(f *meshv1alpha1.MeshFederation) { f.Spec.Services.MeshID = long },
			[]string{"spec.services.meshID", "may not be more than 63"}},
	}
	for _, e := range edits {
		Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: AnyMesh, Name: "services: create with " + e.name,
			Run: func(h *H) {
				f := servicesFederation(meshv1alpha1.ProviderIstio, "istio-system", true)
				e.edit(f)
				h.Refused(f, e.want...)
			}})
	}
	Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: AnyMesh, Name: "services: update a Ready federation to an invalid network",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			h.Create(f)
			h.Ready(f)
			before, network := servicesOutputs(h, f, ns)
			h.Rejected(h.Update(f, func() { f.Spec.Clusters[0].Network = "Bad_Net" }), "spec.clusters[0].network", "should match")
			after, network2 := servicesOutputs(h, f, ns)
			if sortedJoin(before) != sortedJoin(after) || network != network2 || network != "local" {
				h.Fatalf("outputs moved after a refused update: %v/%q -> %v/%q", before, network, after, network2)
			}
			h.Ready(f)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}

// registerServicesConflictCases: an object of a name service federation
// writes exists and is not Meshplane's: Stalled Conflict naming it,
// nothing of service federation written, the object unchanged.
func registerServicesConflictCases() {
	foreign := []struct {
		name string
		obj  func(ns string) client.Object
		kind string
	}{
		{"reader ServiceAccount", func(ns string) client.Object {
			return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "meshplane-istio-reader"}}
		}, "ServiceAccount %s/meshplane-istio-reader"},
		{"east-west gateway Deployment", func(ns string) client.Object {
			return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio-eastwestgateway"},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mine"}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "mine"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gw", Image: "mine"}}}}}}
		}, "Deployment %s/istio-eastwestgateway"},
		{"east-west gateway Service", func(ns string) client.Object {
			return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio-eastwestgateway"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "tls", Port: 15443}}}}
		}, "Service %s/istio-eastwestgateway"},
		{"cross-network Gateway", func(ns string) client.Object {
			return &istionetworking.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cross-network-gateway"}}
		}, "Gateway %s/cross-network-gateway"},
		{"reader ClusterRole", func(ns string) client.Object {
			return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "meshplane-istio-reader-" + ns}}
		}, "ClusterRole /meshplane-istio-reader-%s"},
	}
	for _, fo := range foreign {
		Register(Case{Category: "conflict", Kind: "MeshFederation", Mesh: Istio, Name: "services: foreign " + fo.name,
			Run: func(h *H) {
				ns := h.Namespace(AnyMesh)
				obj := fo.obj(ns)
				h.Create(obj)
				if _, ok := obj.(*rbacv1.ClusterRole); ok {
					h.Cleanup(func() { _ = h.C.Delete(h.Ctx, obj) })
				}
				snap := h.Snapshot(obj)
				f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
				h.Create(f)
				want := fmt.Sprintf("cluster local: "+fo.kind+" already exists and was not created by Meshplane; it is never taken over", ns)
				h.Stalled(f, meshv1alpha1.ConflictReason, "services are not connected: "+want)
				c := h.Condition(f, meshv1alpha1.ServicesConnectedCondition, metav1.ConditionFalse, meshv1alpha1.ConflictReason, want)
				if !strings.HasPrefix(c.Message, "services are not connected: "+want) {
					h.Fatalf("message %q", c.Message)
				}
				noServicesOutputs(h, f, ns, "")
				h.Unchanged(snap)
				controlServices(h)
				h.Must(h.C.Delete(h.Ctx, f))
			}})
	}
	Register(Case{Category: "conflict", Kind: "MeshFederation", Mesh: Istio, Name: "services: two federations of one control plane",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			first := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			h.Create(first)
			h.Ready(first)
			before, _ := servicesOutputs(h, first, ns)
			second := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			h.Create(second)
			// Trust comes first: the second federation's cacerts clashes.
			h.Stalled(second, meshv1alpha1.ConflictReason, "already exists and belongs to Meshplane object meshfederation.."+first.Name)
			after, _ := servicesOutputs(h, first, ns)
			if sortedJoin(before) != sortedJoin(after) {
				h.Fatalf("the first federation's outputs moved: %v -> %v", before, after)
			}
			h.Ready(first)
			h.Must(h.C.Delete(h.Ctx, second))
			h.Must(h.C.Delete(h.Ctx, first))
		}})
}

// registerServicesMeshCases: meshes that cannot federate services.
func registerServicesMeshCases() {
	for _, m := range []struct {
		mesh     Mesh
		provider meshv1alpha1.Provider
	}{{Cilium, meshv1alpha1.ProviderCilium}} {
		Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: m.mesh, Name: "services: only " + string(m.provider) + " members",
			Run: func(h *H) {
				ns := h.Namespace(AnyMesh)
				f := servicesFederation(m.provider, ns, true)
				h.Create(f)
				want := fmt.Sprintf("spec.services: no member's mesh can federate services with Meshplane (local (%s)); trust is shared, remove spec.services or add Istio members", m.provider)
				c := h.Stalled(f, meshv1alpha1.UnsupportedFeatureReason, want)
				if c.Message != want {
					h.Fatalf("message %q, want %q", c.Message, want)
				}
				// The trust part is done; nothing of services is written.
				h.Condition(f, meshv1alpha1.DistributedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
				noServicesOutputs(h, f, ns, "")
				controlServices(h)
				h.Must(h.C.Delete(h.Ctx, f))
			}})
	}
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Istio, Name: "services: gateway without a load-balancer address waits, never Ready",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
			h.Create(f)
			want := fmt.Sprintf("services are not connected: local has no east-west gateway address yet (Service %s/istio-eastwestgateway has no load-balancer ingress)", ns)
			// Waiting is not terminal: observedGeneration stays behind.
			h.Eventually("Ready=False/Waiting", func() error {
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f))
				c := status.Get(&f.Status.CommonStatus, meshv1alpha1.ReadyCondition)
				if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.WaitingReason || c.Message != want {
					return testenv.Errorf("Ready %+v", c)
				}
				if s := status.Get(&f.Status.CommonStatus, meshv1alpha1.StalledCondition); s != nil && s.Status == metav1.ConditionTrue {
					return testenv.Errorf("Stalled while waiting: %+v", s)
				}
				return nil
			})
			objs, network := servicesOutputs(h, f, ns)
			wantObjs := fmt.Sprintf("ClusterRole/meshplane-istio-reader-%[1]s ClusterRoleBinding/meshplane-istio-reader-%[1]s Deployment/istio-eastwestgateway Gateway/cross-network-gateway Service/istio-eastwestgateway ServiceAccount/istio-eastwestgateway ServiceAccount/meshplane-istio-reader", ns)
			if got := sortedJoin(objs); got != wantObjs || network != "local" {
				h.Fatalf("outputs %s network %q, want %s", got, network, wantObjs)
			}
			// The load balancer answers: connected.
			h.Eventually("gateway address", func() error {
				svc := &corev1.Service{}
				if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "istio-eastwestgateway"}, svc); err != nil {
					return err
				}
				svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.96.9.9"}}
				return h.C.Status().Update(h.Ctx, svc)
			})
			// Remote members are not watched: a spec change wakes it.
			h.Must(h.Update(f, func() { f.Spec.Services.MeshID = "woken" }))
			h.Ready(f)
			h.Eventually("gatewayAddress in status", func() error {
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f))
				for _, c := range f.Status.Clusters {
					if c.Services != nil && c.Services.GatewayAddress == "127.96.9.9" {
						return nil
					}
				}
				return testenv.Errorf("status %+v", f.Status.Clusters)
			})
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}

// registerServicesLifecycleCases: removal restores exactly.
func registerServicesLifecycleCases() {
	Register(Case{Category: "shared-fields", Kind: "MeshFederation", Mesh: Istio, Name: "services: a network label set before is restored on removal",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			h.Must(h.Update(nsObj, func() {
				if nsObj.Labels == nil {
					nsObj.Labels = map[string]string{}
				}
				nsObj.Labels["topology.istio.io/network"] = "theirs"
				nsObj.Labels["team"] = "payments"
			}))
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			f.Spec.Clusters[0].Network = "ours"
			h.Create(f)
			h.Ready(f)
			if _, network := servicesOutputs(h, f, ns); network != "ours" {
				h.Fatalf("network label %q", network)
			}
			h.Must(h.Update(f, func() { f.Spec.Services = nil }))
			h.Eventually("released", func() error {
				objs, network := servicesOutputs(h, f, ns)
				if len(objs) != 0 || network != "theirs" {
					return testenv.Errorf("left %v, network %q", objs, network)
				}
				return nil
			})
			h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: ns}, nsObj))
			if nsObj.Labels["team"] != "payments" {
				h.Fatalf("foreign label changed: %v", nsObj.Labels)
			}
			h.Ready(f)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
	Register(Case{Category: "lifecycle", Kind: "MeshFederation", Mesh: Istio, Name: "services: deletion removes what it created, never the trust or the mesh namespace",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
			h.Create(f)
			h.Eventually("outputs", func() error {
				if objs, _ := servicesOutputs(h, f, ns); len(objs) != 7 {
					return testenv.Errorf("outputs %v", objs)
				}
				return nil
			})
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("gone", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), &meshv1alpha1.MeshFederation{}); !apierrors.IsNotFound(err) {
					return testenv.Errorf("federation still there: %v", err)
				}
				return nil
			})
			noServicesOutputs(h, f, ns, "")
			h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "cacerts"}, &corev1.Secret{}))
		}})
	Register(Case{Category: "lifecycle", Kind: "MeshFederation", Mesh: Istio, Name: "services: turning the gateway off removes exactly the gateway",
		Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, true)
			h.Create(f)
			h.Eventually("outputs", func() error {
				if objs, _ := servicesOutputs(h, f, ns); len(objs) != 7 {
					return testenv.Errorf("outputs %v", objs)
				}
				return nil
			})
			off := false
			h.Must(h.Update(f, func() { f.Spec.Services.EastWestGateway = &off }))
			h.Ready(f)
			objs, network := servicesOutputs(h, f, ns)
			want := fmt.Sprintf("ClusterRole/meshplane-istio-reader-%[1]s ClusterRoleBinding/meshplane-istio-reader-%[1]s ServiceAccount/meshplane-istio-reader", ns)
			if got := sortedJoin(objs); got != want || network != "local" {
				h.Fatalf("outputs %s network %q, want %s", got, network, want)
			}
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}

func sortedJoin(s []string) string {
	out := append([]string{}, s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return strings.Join(out, " ")
}
