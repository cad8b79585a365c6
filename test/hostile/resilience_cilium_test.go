package hostile

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// ResiliencePolicy cases on Cilium: what Cilium cannot express or cannot
// combine on one Service (two Envoy redirects) is refused whole with
// nothing written; the lb-l7 annotations on the user's Service are fields
// of a foreign object, never a takeover, and their previous values come
// back exactly; a foreign CiliumEnvoyConfig with the policy's name is never
// taken over. Besides the framework's Inventory, each case checks the
// namespace's CiliumEnvoyConfigs and the annotations of Service web.

const (
	lbL7          = "service.cilium.io/lb-l7"
	lbL7Algorithm = "service.cilium.io/lb-l7-algorithm"
)

// ciliumTimeoutPolicy is a valid Cilium policy for Service web: a request
// timeout (a GAMMA HTTPRoute).
func ciliumTimeoutPolicy(ns, name string) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
			TargetRef: meshv1alpha1.ServiceReference{Name: "web"},
			Timeouts:  &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 10 * time.Second}}}}
}

// ciliumLBPolicy is a valid Cilium policy for Service web: the algorithm
// (the lb-l7 annotations).
func ciliumLBPolicy(ns, name string) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
			TargetRef:    meshv1alpha1.ServiceReference{Name: "web"},
			LoadBalancer: &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}}}
}

// ciliumOutputs lists the namespace's CiliumEnvoyConfigs ("Kind/name" ->
// resourceVersion) and the lb-l7 annotations of Service web.
func ciliumOutputs(h *H, ns string) map[string]string {
	h.Helper()
	out := map[string]string{}
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion("cilium.io/v2")
	l.SetKind("CiliumEnvoyConfigList")
	h.Must(h.C.List(h.Ctx, l, client.InNamespace(ns)))
	for _, o := range l.Items {
		out["CiliumEnvoyConfig/"+o.GetName()] = o.GetResourceVersion()
	}
	svc := &corev1.Service{}
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc); err == nil {
		for _, k := range []string{lbL7, lbL7Algorithm} {
			if v, ok := svc.Annotations[k]; ok {
				out["Service/web["+k+"]"] = v
			}
		}
	} else if !apierrors.IsNotFound(err) {
		h.Fatalf("reading Service web: %v", err)
	}
	return out
}

// sameCilium asserts the namespace's inventory and Cilium outputs are as
// before.
func sameCilium(h *H, ns string, before Inventory, outs map[string]string) {
	h.Helper()
	h.Same(ns, before)
	if after := ciliumOutputs(h, ns); !equalMaps(after, outs) {
		h.Fatalf("Cilium outputs of %s changed: before %v, after %v", ns, outs, after)
	}
}

// ciliumControl asserts a valid Cilium policy still becomes Ready.
func ciliumControl(h *H) {
	h.Helper()
	ns := h.Namespace(Cilium)
	h.Service(ns, "web")
	rp := ciliumTimeoutPolicy(ns, "control")
	h.Create(rp)
	h.Ready(rp)
}

// refusedOnCilium creates rp in ns and asserts it is UnsupportedFeature
// with every want and writes nothing (no output, no annotation, no
// finalizer); a valid Cilium policy still becomes Ready.
func refusedOnCilium(h *H, ns string, rp *meshv1alpha1.ResiliencePolicy, want ...string) {
	h.Helper()
	before, outs := h.Inventory(ns), ciliumOutputs(h, ns)
	h.Create(rp)
	h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason, want...)
	delete(before, "ResiliencePolicy/"+rp.Name)
	sameCilium(h, ns, before, outs)
	h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
	if len(rp.Status.Inventory) != 0 || len(rp.Status.SharedFields) != 0 || len(rp.Finalizers) != 0 {
		h.Fatalf("refused policy: inventory %v, shared fields %v, finalizers %v", rp.Status.Inventory, rp.Status.SharedFields, rp.Finalizers)
	}
	ciliumControl(h)
}

func init() {
	Register(ciliumResilienceRefusals()...)
	Register(ciliumResilienceForeign()...)
}

func ciliumResilienceRefusals() []Case {
	return []Case{
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "consistent hashing on Cilium",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				rp := ciliumLBPolicy(ns, "hash")
				rp.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerConsistentHash,
					ConsistentHash: &meshv1alpha1.ConsistentHash{Header: "x-user"}}
				refusedOnCilium(h, ns, rp, "loadBalancer.consistentHash.header: service.cilium.io/lb-l7-algorithm has no hashing or warm-up; use RoundRobin, LeastRequest or Random")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "retry budget on Cilium",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				rp := ciliumTimeoutPolicy(ns, "budget")
				rp.Spec.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 2}, Budget: &meshv1alpha1.RetryBudget{Percent: 20}}
				refusedOnCilium(h, ns, rp, "retries.budget: Cilium has no retry budget",
					"retries.attempts: HTTPRoute retry is only in Gateway API's experimental channel")
			}},
		{Category: "mesh-limit", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "algorithm next to the policy's own timeout route",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				rp := ciliumLBPolicy(ns, "both")
				rp.Spec.Timeouts = &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 10 * time.Second}}
				refusedOnCilium(h, ns, rp, "feature loadBalancer.algorithm: LeastRequest is not supported by Cilium (not installed by a MeshInstall) in namespace "+ns,
					"the lb-l7 annotations make Cilium redirect Service web to an Envoy listener of its own, and the policy's own HTTPRoute (timeouts.request) is a second one; Cilium defines no precedence between two",
					"drop loadBalancer, or add an Envoy setting (for example connectionPool) so that one CiliumEnvoyConfig carries the algorithm and the timeout")
			}},
		{Category: "mesh-limit", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "Envoy fields on a Service a TrafficSplit routes",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				ts := GoodTrafficSplit(ns, "split", Cilium)
				h.Create(ts)
				h.Ready(ts)
				route := &unstructured.Unstructured{}
				route.SetAPIVersion("gateway.networking.k8s.io/v1")
				route.SetKind("HTTPRoute")
				route.SetNamespace(ns)
				route.SetName("split")
				snap := h.Snapshot(route)
				rp := ciliumTimeoutPolicy(ns, "envoy")
				rp.Spec.Timeouts = nil
				rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 10}}
				refusedOnCilium(h, ns, rp, "feature faultInjection.abort is not supported by Cilium",
					"TrafficSplit split routes Service web with a GAMMA HTTPRoute, for which Cilium writes its own Envoy listener; a CiliumEnvoyConfig for the same Service would be a second redirect",
					"move the pool, outlier, idle-timeout, fault and rate-limit settings out of this policy while the TrafficSplit exists")
				h.Unchanged(snap)
			}},
		{Category: "silent-drop", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "timeout on a two-port Service without a port",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web", 8080, 9090)
				refusedOnCilium(h, ns, ciliumTimeoutPolicy(ns, "ports"),
					"timeouts.request is not supported by Cilium", "a GAMMA HTTPRoute binds to one Service port and Service web has TCP ports [8080 9090]: set spec.targetRef.port to the port the timeout is for")
			}},
		{Category: "silent-drop", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "timeout on a UDP-only Service",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
					Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}}
				h.Must(h.C.Create(h.Ctx, svc))
				refusedOnCilium(h, ns, ciliumTimeoutPolicy(ns, "udp"), "Service web has TCP ports []")
			}},
		{Category: "refused-update", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "update a Ready algorithm policy to hashing keeps the annotations",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				rp := ciliumLBPolicy(ns, "lb")
				h.Create(rp)
				h.Ready(rp)
				before, outs := h.Inventory(ns), ciliumOutputs(h, ns)
				if outs["Service/web["+lbL7Algorithm+"]"] != "least_request" {
					h.Fatalf("annotations before: %v", outs)
				}
				h.Must(h.Update(rp, func() {
					rp.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerConsistentHash, ConsistentHash: &meshv1alpha1.ConsistentHash{SourceIP: true}}
				}))
				h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason, "loadBalancer.consistentHash.sourceIP: service.cilium.io/lb-l7-algorithm has no hashing")
				// The previous generation stays in force, and stays
				// recorded so a deletion restores the Service.
				sameCilium(h, ns, before, outs)
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
				if len(rp.Status.SharedFields) != 2 || len(rp.Finalizers) != 1 {
					h.Fatalf("record of the Service's fields lost: %v %v", rp.Status.SharedFields, rp.Finalizers)
				}
				h.Must(h.C.Delete(h.Ctx, rp))
				h.Eventually("annotations released", func() error {
					if got := ciliumOutputs(h, ns); len(got) != 0 {
						return fmt.Errorf("outputs %v", got)
					}
					return nil
				})
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Cilium, Isolated: true, Name: "Cilium installed without Envoy",
			Run: func(h *H) {
				cilium(h, false, "", false)
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				before, outs := h.Inventory(ns), ciliumOutputs(h, ns)
				rp := ciliumLBPolicy(ns, "lb")
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason, "feature loadBalancer.algorithm: LeastRequest is not supported by Cilium as installed by MeshInstall cilium in namespace "+ns,
					"loadBalancer.algorithm: LeastRequest: Cilium's Envoy is not enabled in Cilium as installed by MeshInstall cilium", "set spec.cilium.envoy on the MeshInstall")
				delete(before, "ResiliencePolicy/lb")
				sameCilium(h, ns, before, outs)
			}},
	}
}

func ciliumResilienceForeign() []Case {
	return []Case{
		{Category: "foreign", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "the user's lb-l7 annotations come back exactly on deletion",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns,
					Annotations: map[string]string{lbL7Algorithm: "random", "owner": "payments"}, Labels: map[string]string{"app": "web"}},
					Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
				h.Must(h.C.Create(h.Ctx, svc))
				snap := h.Snapshot(svc)
				rp := ciliumLBPolicy(ns, "lb")
				h.Create(rp)
				h.Ready(rp)
				got := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(svc), got))
				if got.Annotations[lbL7] != "enabled" || got.Annotations[lbL7Algorithm] != "least_request" || got.Annotations["owner"] != "payments" ||
					len(got.OwnerReferences) != 0 || len(got.Labels) != 1 {
					h.Fatalf("Service while the policy applies: annotations %v labels %v owners %v", got.Annotations, got.Labels, got.OwnerReferences)
				}
				h.Must(h.C.Delete(h.Ctx, rp))
				h.Eventually("policy gone", func() error {
					if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp); !apierrors.IsNotFound(err) {
						return fmt.Errorf("policy still there: %v", err)
					}
					return nil
				})
				h.Unchanged(snap)
			}},
		{Category: "deletion", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "policy deleted after its Service",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				svc := h.Service(ns, "web")
				rp := ciliumLBPolicy(ns, "lb")
				h.Create(rp)
				h.Ready(rp)
				h.Must(h.C.Delete(h.Ctx, svc))
				h.Stalled(rp, meshv1alpha1.ReferenceNotFoundReason, "spec.targetRef.name: Service "+ns+"/web does not exist")
				h.Must(h.C.Delete(h.Ctx, rp))
				h.Eventually("policy gone (no finalizer left behind)", func() error {
					if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp); !apierrors.IsNotFound(err) {
						return fmt.Errorf("policy still there (finalizers %v): %v", rp.Finalizers, err)
					}
					return nil
				})
				// A new Service of the same name is the user's, untouched.
				h.Service(ns, "web")
				h.Consistently(time.Second, "new Service untouched", func() error {
					if got := ciliumOutputs(h, ns); len(got) != 0 {
						return fmt.Errorf("outputs %v", got)
					}
					return nil
				})
			}},
		{Category: "foreign", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "foreign CiliumEnvoyConfig with the policy's name",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				foreign := &unstructured.Unstructured{}
				foreign.SetAPIVersion("cilium.io/v2")
				foreign.SetKind("CiliumEnvoyConfig")
				foreign.SetNamespace(ns)
				foreign.SetName("envoy")
				foreign.Object["spec"] = map[string]any{"services": []any{map[string]any{"name": "web", "namespace": ns}},
					"resources": []any{map[string]any{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "theirs"}}}
				h.Must(h.C.Create(h.Ctx, foreign))
				snap := h.Snapshot(foreign)
				before, outs := h.Inventory(ns), ciliumOutputs(h, ns)
				rp := ciliumTimeoutPolicy(ns, "envoy")
				rp.Spec.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptrTo[int32](3)}
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.ConflictReason, "CiliumEnvoyConfig "+ns+"/envoy already exists and was not created by Meshplane; it is never taken over")
				delete(before, "ResiliencePolicy/envoy")
				sameCilium(h, ns, before, outs)
				h.Unchanged(snap)
				ciliumControl(h)
			}},
	}
}
