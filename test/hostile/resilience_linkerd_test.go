package hostile

import (
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// ResiliencePolicy cases on Linkerd, whose settings are annotations of
// the user's Service: the Service is a foreign object, so every refusal
// leaves it (and the namespace's inventory) exactly as it was, and a
// policy that goes gives back each annotation's previous value.

// linkerdServiceWith creates Service web in ns (port 8080, or the ports
// given) with annotations ann, then mutate applies to it before creation.
func linkerdServiceWith(h *H, ns string, ann map[string]string, mutate func(*corev1.Service), ports ...int32) *corev1.Service {
	h.Helper()
	if len(ports) == 0 {
		ports = []int32{8080}
	}
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: maps.Clone(ann)},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("http-%d", p), Port: p, Protocol: corev1.ProtocolTCP})
	}
	if mutate != nil {
		mutate(s)
	}
	h.Must(h.C.Create(h.Ctx, s))
	return s
}

// refusedOnLinkerd creates rp (Service web exists in ns) and asserts it is
// Stalled with reason and every want, that nothing in the namespace was
// written (the Service's annotations included), and that a control policy
// on Linkerd still becomes Ready.
func refusedOnLinkerd(h *H, ns string, svc *corev1.Service, rp *meshv1alpha1.ResiliencePolicy, reason string, want ...string) {
	h.Helper()
	before, snap := h.Inventory(ns), h.Snapshot(svc)
	h.Create(rp)
	h.Stalled(rp, reason, want...)
	delete(before, "ResiliencePolicy/"+rp.Name)
	h.Same(ns, before)
	h.Unchanged(snap)
	h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
	if len(rp.Status.Inventory)+len(rp.Status.SharedFields) != 0 {
		h.Fatalf("refused policy records outputs: inventory %v, sharedFields %v", rp.Status.Inventory, rp.Status.SharedFields)
	}
	linkerdControl(h)
}

// linkerdControl: a valid policy in another Linkerd namespace is Ready and
// sets its annotations.
func linkerdControl(h *H) {
	h.Helper()
	ns := h.Namespace(Linkerd)
	h.Service(ns, "web")
	rp := goodResiliencePolicy(ns, "control", Linkerd)
	h.Create(rp)
	h.Ready(rp)
	svc := &corev1.Service{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
	if svc.Annotations["balancer.linkerd.io/failure-accrual-consecutive-max-failures"] != "5" || svc.Annotations["retry.linkerd.io/limit"] != "3" {
		h.Fatalf("control policy's annotations: %v", svc.Annotations)
	}
}

func init() {
	Register(linkerdResilienceRefusals()...)
	Register(linkerdResilienceForeign()...)
}

func linkerdResilienceRefusals() []Case {
	return []Case{
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "local rate limit on Linkerd without a Server",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, map[string]string{"team": "shop"}, nil)
				rp := goodResiliencePolicy(ns, "rl", Linkerd)
				rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: time.Second}}}
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.UnsupportedFeatureReason, linkerdNoServer(ns))
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "local rate limit on Linkerd with a Server for wider pods",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, nil)
				wide := linkerdUserServer(ns, "all-pods", map[string]any{}, int64(8080))
				h.Must(h.C.Create(h.Ctx, wide))
				snap := h.Snapshot(wide)
				rp := goodResiliencePolicy(ns, "rl", Linkerd)
				rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: time.Second}}}
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.UnsupportedFeatureReason, linkerdNoServer(ns))
				h.Unchanged(snap)
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "local rate limit burst on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, nil)
				server := linkerdUserServer(ns, "web-http", map[string]any{"app": "web"}, int64(8080))
				h.Must(h.C.Create(h.Ctx, server))
				snap := h.Snapshot(server)
				rp := goodResiliencePolicy(ns, "rl", Linkerd)
				rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: time.Second}, Burst: ptrTo[int32](50)}}
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.UnsupportedFeatureReason,
					"feature rateLimit.local is not supported by Linkerd: spec.rateLimit.local.burst 50: Linkerd's HTTPLocalRateLimitPolicy has no burst (it admits requestsPerSecond); "+
						"remove burst or set it to requests (10)")
				h.Unchanged(snap)
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "retry budget and gateway errors on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, nil)
				rp := goodResiliencePolicy(ns, "budget", Linkerd)
				rp.Spec.Retries.Budget = &meshv1alpha1.RetryBudget{Percent: 20}
				rp.Spec.OutlierDetection.ConsecutiveGatewayErrors = ptrTo[int32](3)
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.UnsupportedFeatureReason,
					"outlierDetection.consecutiveGatewayErrors: Linkerd's failure accrual counts every 5xx response alike; use consecutive5xxErrors",
					"retries.budget: Linkerd's retry annotations have no budget (only retry.linkerd.io/limit per request); remove retries.budget")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "retry on connection failure on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, nil)
				rp := goodResiliencePolicy(ns, "reset", Linkerd)
				rp.Spec.Retries.RetryOn = []meshv1alpha1.RetryOn{"5xx", "ConnectFailure"}
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.UnsupportedFeatureReason,
					"spec.retries.retryOn: retry condition ConnectFailure: Linkerd retries on HTTP statuses (5xx, GatewayError, Retriable4xx) and gRPC statuses (Unavailable, Cancelled, DeadlineExceeded) only")
			}},
		{Category: "spec", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "one port of a Service with two on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, nil, 8080, 9090)
				rp := goodResiliencePolicy(ns, "port", Linkerd)
				rp.Spec.TargetRef.Port = ptrTo[int32](8080)
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.InvalidSpecReason,
					"spec.targetRef.port 8080: Linkerd reads resilience annotations for every port of Service web, which has 2 ports; "+
						"leave spec.targetRef.port unset (the policy then covers every port) or split the port into its own Service")
			}},
		{Category: "spec", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "retries on a headless Service on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
				rp := goodResiliencePolicy(ns, "headless", Linkerd)
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.InvalidSpecReason,
					"spec.targetRef.name: Service web is headless (clusterIP None) and Linkerd applies retries and timeouts only to calls to a Service address; "+
						"target a Service with a cluster IP or remove retries and timeouts")
			}},
		{Category: "foreign", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "target Service labelled as a Meshplane output",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				svc := linkerdServiceWith(h, ns, nil, func(s *corev1.Service) {
					s.Labels = map[string]string{"app.kubernetes.io/managed-by": "meshplane", "meshplane.io/owner": "Canary." + ns + ".web"}
				})
				rp := goodResiliencePolicy(ns, "output", Linkerd)
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.InvalidSpecReason,
					"spec.targetRef.name: Service web is an output of Meshplane object Canary."+ns+".web; Linkerd's settings are annotations of the Service, "+
						"which Meshplane does not set on its own outputs — target the Service your clients call")
			}},
		{Category: "conflict", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "policy sets retries a Linkerd TrafficSplit already sets",
			Run: func(h *H) {
				ts, ns := readySplit(h, Linkerd)
				h.Must(h.Update(ts, func() { ts.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2} }))
				h.Ready(ts)
				svc := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
				rp := goodResiliencePolicy(ns, "late", Linkerd)
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.ConflictReason,
					"TrafficSplit split routes Service web and already sets [retries (TrafficSplit spec.retries, ResiliencePolicy spec.retries)]")
			}},
		{Category: "composition", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "gRPC retry conditions next to a Linkerd TrafficSplit",
			Run: func(h *H) {
				_, ns := readySplit(h, Linkerd)
				svc := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
				rp := goodResiliencePolicy(ns, "grpc", Linkerd)
				rp.Spec.Retries.RetryOn = []meshv1alpha1.RetryOn{"Unavailable"}
				refusedOnLinkerd(h, ns, svc, rp, meshv1alpha1.UnsupportedFeatureReason,
					"ResiliencePolicy "+ns+"/grpc spec.retries.retryOn: TrafficSplit split routes Service web with an HTTPRoute, which carries the retries, "+
						"and Linkerd ignores retry.linkerd.io/grpc on an HTTPRoute; retry on HTTP statuses only (5xx, GatewayError, Retriable4xx) while the split exists")
			}},
	}
}

func linkerdResilienceForeign() []Case {
	return []Case{
		{Category: "foreign", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "user's own Linkerd annotations come back on deletion",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				user := map[string]string{"retry.linkerd.io/limit": "1", "balancer.linkerd.io/failure-accrual": "consecutive", "team": "shop"}
				linkerdServiceWith(h, ns, user, nil)
				rp := goodResiliencePolicy(ns, "mine", Linkerd)
				h.Create(rp)
				h.Ready(rp)
				annotations := func(want map[string]string) func() error {
					return func() error {
						svc := &corev1.Service{}
						h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
						if !maps.Equal(svc.Annotations, want) {
							return fmt.Errorf("annotations %v, want %v", svc.Annotations, want)
						}
						return nil
					}
				}
				h.Eventually("policy's annotations", annotations(map[string]string{"retry.linkerd.io/limit": "3", "retry.linkerd.io/http": "5xx",
					"balancer.linkerd.io/failure-accrual": "consecutive", "balancer.linkerd.io/failure-accrual-consecutive-max-failures": "5", "team": "shop"}))
				h.Must(h.C.Delete(h.Ctx, rp))
				h.Eventually("user's annotations back", annotations(user))
				h.Eventually("policy gone", func() error {
					if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp); !apierrors.IsNotFound(err) {
						return fmt.Errorf("policy still there: %v", err)
					}
					return nil
				})
			}},
		{Category: "refused-update", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "fault added to a Ready Linkerd policy",
			Run: func(h *H) {
				rp, ns := readyResiliencePolicy(h, Linkerd)
				svc := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
				before, snap := h.Inventory(ns), h.Snapshot(svc)
				h.Must(h.Update(rp, func() {
					rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}}
				}))
				h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason, "faultInjection.abort: Linkerd has no fault injection")
				// The previous generation's annotations stay in force.
				delete(before, "ResiliencePolicy/"+rp.Name)
				h.Same(ns, before)
				h.Unchanged(snap)
				if svc.Annotations["balancer.linkerd.io/failure-accrual-consecutive-max-failures"] != "5" {
					h.Fatalf("previous generation's annotations: %v", svc.Annotations)
				}
			}},
	}
}

// linkerdNoServer is the refusal of a Linkerd rate limit on Service web
// (port 8080) of ns when no Server covers it.
func linkerdNoServer(ns string) string {
	return "feature rateLimit.local is not supported by Linkerd: spec.rateLimit.local: Linkerd limits rates inbound with an HTTPLocalRateLimitPolicy on a Server, " +
		"and no Server in namespace " + ns + " selects exactly the pods of Service web (podSelector.matchLabels map[app:web]) on port 8080; " +
		"Meshplane does not create a Server (a new Server changes which traffic the port admits): create one for those pods and that port, then update the policy"
}

// linkerdUserServer is a user's policy.linkerd.io/v1beta3 Server.
func linkerdUserServer(ns, name string, labels map[string]any, port any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"podSelector": map[string]any{"matchLabels": labels}, "port": port,
			"proxyProtocol": "HTTP/1", "accessPolicy": "all-unauthenticated"},
	}}
}
