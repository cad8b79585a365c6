package hostile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// ResiliencePolicy cases: bounds and CEL rules refused by the API server
// (on create and on update of a Ready policy), fields a mesh cannot
// enforce (refused whole, naming each field, nothing written), missing
// references, and overlaps with another policy or a route. Besides the
// framework's Inventory (route and policy kinds), each case checks the
// policy kinds it alone writes (DestinationRule, EnvoyFilter).

// goodResiliencePolicy is a valid policy for Service web in ns: outlier
// detection and retries.
func goodResiliencePolicy(ns, name string, m Mesh) *meshv1alpha1.ResiliencePolicy {
	five := int32(5)
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: Provider(m)},
			TargetRef:        meshv1alpha1.ServiceReference{Name: "web"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: &five},
			Retries:          &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3}}}}
}

// resilienceOutputs lists the namespace's DestinationRules, EnvoyFilters
// and VirtualServices: "Kind/name" -> resourceVersion.
func resilienceOutputs(h *H, ns string) map[string]string {
	h.Helper()
	out := map[string]string{}
	for _, gvk := range []struct{ v, k string }{{"networking.istio.io/v1", "DestinationRule"}, {"networking.istio.io/v1alpha3", "EnvoyFilter"}, {"networking.istio.io/v1", "VirtualService"}} {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(gvk.v)
		l.SetKind(gvk.k + "List")
		h.Must(h.C.List(h.Ctx, l, client.InNamespace(ns)))
		for _, o := range l.Items {
			out[gvk.k+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	return out
}

// sameOutputs asserts the namespace's inventory and resilience outputs are
// as before.
func sameOutputs(h *H, ns string, before Inventory, outs map[string]string) {
	h.Helper()
	h.Same(ns, before)
	if after := resilienceOutputs(h, ns); !equalMaps(after, outs) {
		h.Fatalf("resilience outputs of %s changed: before %v, after %v", ns, outs, after)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// readyResiliencePolicy creates Service web and a good policy in a fresh
// namespace of m and waits until it is Ready.
func readyResiliencePolicy(h *H, m Mesh) (*meshv1alpha1.ResiliencePolicy, string) {
	h.Helper()
	ns := h.Namespace(m)
	h.Service(ns, "web")
	rp := goodResiliencePolicy(ns, "resilience", m)
	h.Create(rp)
	h.Ready(rp)
	return rp, ns
}

// resilienceEdits are specs the API server refuses, with its message.
var resilienceEdits = []struct {
	name string
	edit func(*meshv1alpha1.ResiliencePolicy)
	want []string
}{
	{"empty policy", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.OutlierDetection, rp.Spec.Retries = nil, nil },
		[]string{"a ResiliencePolicy needs at least one of connectionPool, outlierDetection, loadBalancer, retries, timeouts, faultInjection or rateLimit"}},
	{"maxConnections 0", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxConnections: ptrTo[int32](0)}
	}, []string{"spec.connectionPool.maxConnections", "should be greater than or equal to 1"}},
	{"empty connection pool", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.ConnectionPool = &meshv1alpha1.ConnectionPool{} },
		[]string{"spec.connectionPool", "should have at least 1 properties"}},
	{"connectTimeout banana", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.ConnectionPool = &meshv1alpha1.ConnectionPool{ConnectTimeout: &metav1.Duration{Duration: 2 * time.Hour}}
	}, []string{"connectTimeout must be between 1ms and 1h; got 2h0m0s"}},
	{"outlier detection without a trigger", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.OutlierDetection = &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptrTo[int32](50)}
	}, []string{"outlierDetection needs consecutive5xxErrors, consecutiveGatewayErrors or successRate"}},
	{"maxEjectionPercent 101", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.OutlierDetection.MaxEjectionPercent = ptrTo[int32](101)
	},
		[]string{"spec.outlierDetection.maxEjectionPercent", "should be less than or equal to 100"}},
	{"consistentHash without algorithm ConsistentHash", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRandom, ConsistentHash: &meshv1alpha1.ConsistentHash{SourceIP: true}}
	}, []string{"consistentHash is set exactly when algorithm is ConsistentHash"}},
	{"consistentHash with two keys", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerConsistentHash,
			ConsistentHash: &meshv1alpha1.ConsistentHash{Header: "x-user", SourceIP: true}}
	}, []string{"consistentHash needs exactly one of header, cookie or sourceIP: true"}},
	{"warmup with Random", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRandom, Warmup: &metav1.Duration{Duration: time.Minute}}
	}, []string{"warmup needs algorithm RoundRobin or LeastRequest"}},
	{"retries 11 attempts", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.Retries.Attempts = 11 },
		[]string{"spec.retries.attempts", "should be less than or equal to 10"}},
	{"retry budget 0 percent", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.Retries.Budget = &meshv1alpha1.RetryBudget{} },
		[]string{"spec.retries.budget.percent", "should be greater than or equal to 1"}},
	{"perTryTimeout over the request timeout", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.Retries.PerTryTimeout = &metav1.Duration{Duration: time.Minute}
		rp.Spec.Timeouts = &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 10 * time.Second}}
	}, []string{"retries.perTryTimeout must not exceed timeouts.request"}},
	{"fault without delay or abort", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{} },
		[]string{"faultInjection needs delay or abort"}},
	{"abort status 600", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 600, Percent: 1}}
	}, []string{"spec.faultInjection.abort.httpStatus", "should be less than or equal to 599"}},
	{"fault delay 101 percent", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{Delay: &meshv1alpha1.FaultDelay{FixedDelay: metav1.Duration{Duration: time.Second}, Percent: 101}}
	}, []string{"spec.faultInjection.delay.percent", "should be less than or equal to 100"}},
	{"rate limit interval 10ms", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: 10 * time.Millisecond}}}
	}, []string{"interval must be between 50ms and 1h; got 10ms"}},
	{"rate limit burst below requests", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: time.Second}, Burst: ptrTo[int32](5)}}
	}, []string{"burst must be at least requests"}},
	{"target Service name with a namespace", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.TargetRef.Name = "shop/web" },
		[]string{"spec.targetRef.name", "should match"}},
}

func init() {
	RegisterControl("ResiliencePolicy", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		h.Service(ns, "web")
		rp := goodResiliencePolicy(ns, "control", m)
		h.Create(rp)
		h.Ready(rp)
	})
	for _, e := range resilienceEdits {
		Register(Case{Category: "spec", Kind: "ResiliencePolicy", Mesh: Istio, Name: "create " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "bad", Istio)
				e.edit(rp)
				h.Refused(rp, e.want...)
				sameOutputs(h, ns, before, outs)
			}})
	}
	for _, i := range []int{3, 9, 11, 16} {
		e := resilienceEdits[i]
		Register(Case{Category: "refused-update", Kind: "ResiliencePolicy", Mesh: Istio, Name: "update " + e.name,
			Run: func(h *H) {
				rp, ns := readyResiliencePolicy(h, Istio)
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				gen := rp.Generation
				h.Rejected(h.Update(rp, func() { e.edit(rp) }), e.want...)
				sameOutputs(h, ns, before, outs)
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
				if rp.Generation != gen {
					h.Fatalf("generation moved from %d to %d on a refused update", gen, rp.Generation)
				}
			}})
	}
	Register(resilienceCapabilityCases()...)
	Register(resilienceRuntimeCases()...)
}

// refusedWhole creates rp in ns (Service web exists) and asserts it is
// UnsupportedFeature with every want, writes nothing, and that the report
// names each refused field; a control policy still becomes Ready.
func refusedWhole(h *H, m Mesh, ns string, rp *meshv1alpha1.ResiliencePolicy, want ...string) {
	h.Helper()
	before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
	h.Create(rp)
	h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason, want...)
	sameOutputs(h, ns, before, outs)
	h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
	if len(rp.Status.Inventory) != 0 || !slices.ContainsFunc(rp.Status.Support, func(s meshv1alpha1.FieldSupport) bool {
		return s.Provider == rp.Status.Provider && s.State == meshv1alpha1.FieldRefused
	}) {
		h.Fatalf("refused policy: inventory %v, support %+v", rp.Status.Inventory, rp.Status.Support)
	}
	h.Control("ResiliencePolicy", Istio)
}

func resilienceCapabilityCases() []Case {
	return []Case{
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Istio, Name: "success-rate outlier detection on Istio",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				rp := goodResiliencePolicy(ns, "sr", Istio)
				rp.Spec.OutlierDetection.SuccessRate = &meshv1alpha1.SuccessRateEjection{MinimumHosts: 5, RequestVolume: 100, StdevFactor: 1900}
				refusedWhole(h, Istio, ns, rp, "feature outlierDetection.successRate is not supported by Istio (not installed by a MeshInstall) in namespace "+ns+
					" (Sidecar data plane): outlierDetection.successRate: Istio's outlierDetection has no success-rate mode; use consecutive5xxErrors or consecutiveGatewayErrors: "+
					"choose a mesh that enforces them (status.support lists each mesh's answer)"+tail)
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Istio, Name: "stream idle timeout on Istio",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				rp := goodResiliencePolicy(ns, "idle", Istio)
				rp.Spec.Timeouts = &meshv1alpha1.Timeouts{Idle: &metav1.Duration{Duration: time.Minute}}
				refusedWhole(h, Istio, ns, rp, "timeouts.idle: Istio routes have no stream idle timeout; use connectionPool.idleTimeout")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Istio, Name: "ambient namespace without a waypoint",
			Run: func(h *H) {
				ns := ambientNamespace(h)
				h.Service(ns, "web")
				rp := goodResiliencePolicy(ns, "ambient", Istio)
				rp.Spec.Retries = nil
				refusedWhole(h, Istio, ns, rp, "feature outlierDetection.consecutive5xxErrors is not supported by Istio (not installed by a MeshInstall) in namespace "+ns+
					" (Ambient data plane): outlierDetection.consecutive5xxErrors: namespace "+ns+" is ambient and no waypoint serves it; enable a waypoint for namespace "+ns)
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "fault injection and pools on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				h.Service(ns, "web")
				rp := goodResiliencePolicy(ns, "linkerd", Linkerd)
				rp.Spec.FaultInjection = &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}}
				refusedWhole(h, Linkerd, ns, rp, "feature faultInjection.abort is not supported by Linkerd", "faultInjection.abort: Linkerd has no fault injection")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "retries on Cilium",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				rp := goodResiliencePolicy(ns, "cilium", Cilium)
				refusedWhole(h, Cilium, ns, rp, "retries.attempts: HTTPRoute retry is only in Gateway API's experimental channel")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Istio, Name: "update adds a refused field to a Ready policy",
			Run: func(h *H) {
				rp, ns := readyResiliencePolicy(h, Istio)
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				h.Must(h.Update(rp, func() {
					rp.Spec.OutlierDetection.SuccessRate = &meshv1alpha1.SuccessRateEjection{MinimumHosts: 5, RequestVolume: 100, StdevFactor: 1900}
				}))
				h.Stalled(rp, meshv1alpha1.UnsupportedFeatureReason, "outlierDetection.successRate: Istio's outlierDetection has no success-rate mode")
				// The previous generation stays in force.
				sameOutputs(h, ns, before, outs)
				if len(outs) != 2 {
					h.Fatalf("previous generation's outputs: %v", outs)
				}
			}},
	}
}

func resilienceRuntimeCases() []Case {
	return []Case{
		{Category: "missing-ref", Kind: "ResiliencePolicy", Mesh: Istio, Name: "target Service missing",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "orphan", Istio)
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.ReferenceNotFoundReason, "spec.targetRef.name: Service "+ns+"/web does not exist; create it or fix spec.targetRef.name (re-checked when it appears)")
				delete(before, "ResiliencePolicy/orphan")
				sameOutputs(h, ns, before, outs)
				h.Control("ResiliencePolicy", Istio)
			}},
		{Category: "missing-ref", Kind: "ResiliencePolicy", Mesh: Istio, Name: "target port missing",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "port", Istio)
				rp.Spec.TargetRef.Port = ptrTo[int32](9999)
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.InvalidSpecReason, "spec.targetRef.port: Service web has no port 9999; set it to one of [8080] or leave it unset for every port")
				sameOutputs(h, ns, before, outs)
			}},
		{Category: "missing-ref", Kind: "ResiliencePolicy", Mesh: Istio, Name: "rate limit on a Service without a selector",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				svc := h.Service(ns, "web")
				h.Must(h.Update(svc, func() { svc.Spec.Selector = nil }))
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "rl", Istio)
				rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: time.Second}}}
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.InvalidSpecReason, "spec.rateLimit: Service web has no selector, so no pods would carry the rate limit; give the Service a selector or remove spec.rateLimit")
				sameOutputs(h, ns, before, outs)
			}},
		{Category: "conflict", Kind: "ResiliencePolicy", Mesh: Istio, Name: "second policy for one Service",
			Run: func(h *H) {
				first, ns := readyResiliencePolicy(h, Istio)
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				second := goodResiliencePolicy(ns, "second", Istio)
				h.Create(second)
				h.Stalled(second, meshv1alpha1.ConflictReason, "spec.targetRef.name web: Service web already has ResiliencePolicy "+first.Name+"; a mesh applies one policy per Service")
				delete(before, "ResiliencePolicy/second")
				sameOutputs(h, ns, before, outs)
			}},
		{Category: "conflict", Kind: "ResiliencePolicy", Mesh: Istio, Name: "policy sets retries a TrafficSplit already sets",
			Run: func(h *H) {
				ts, ns := readySplit(h, Istio)
				h.Must(h.Update(ts, func() { ts.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2} }))
				h.Ready(ts)
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "late", Istio)
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.ConflictReason, "TrafficSplit split routes Service web and already sets [retries (TrafficSplit spec.retries, ResiliencePolicy spec.retries)]")
				delete(before, "ResiliencePolicy/late")
				sameOutputs(h, ns, before, outs)
			}},
		{Category: "conflict", Kind: "ResiliencePolicy", Mesh: Istio, Name: "route fields on a Service routed by a GatewayAPI split",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				ts := GoodTrafficSplit(ns, "split", Istio)
				ts.Spec.Output = meshv1alpha1.OutputGatewayAPI
				h.Create(ts)
				h.Ready(ts)
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "gw", Istio)
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.ConflictReason, "TrafficSplit split routes Service web with a Gateway API HTTPRoute, which cannot carry retries and faults; set its spec.output to Native")
				delete(before, "ResiliencePolicy/gw")
				sameOutputs(h, ns, before, outs)
			}},
		{Category: "composition", Kind: "ResiliencePolicy", Mesh: Istio, Name: "split and policy give one VirtualService for the host",
			Run: func(h *H) {
				ts, ns := readySplit(h, Istio)
				rp := goodResiliencePolicy(ns, "composed", Istio)
				h.Create(rp)
				h.Ready(rp)
				h.Eventually("one composed VirtualService", func() error {
					outs := resilienceOutputs(h, ns)
					var vss []string
					for k := range outs {
						if strings.HasPrefix(k, "VirtualService/") {
							vss = append(vss, k)
						}
					}
					h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
					if len(vss) != 1 || vss[0] != "VirtualService/"+ts.Name || rp.Status.ComposedWith != ts.Name {
						return fmt.Errorf("VirtualServices %v, composedWith %q", vss, rp.Status.ComposedWith)
					}
					return nil
				})
			}},
	}
}
