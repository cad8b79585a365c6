package mesh

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// This file is the contract of the ResiliencePolicy controller with the
// providers: the fields a policy can set (ResilienceField), each mesh's
// install- and namespace-aware answer per field (ResilienceSupport, the
// per-field report in status and docs/resilience.md), the pure
// translation, and the composition of the policy's route-level fields
// (retries, timeouts, faults) into the route a TrafficSplit writes for the
// same Service (one route per Service and mesh).

// ResilienceField names one field of a ResiliencePolicy spec a mesh may or
// may not enforce; the load-balancing algorithm is one field per value.
type ResilienceField string

// The fields of a ResiliencePolicy, in documentation order.
const (
	RFMaxConnections           ResilienceField = "connectionPool.maxConnections"
	RFMaxPendingRequests       ResilienceField = "connectionPool.maxPendingRequests"
	RFMaxRequests              ResilienceField = "connectionPool.maxRequests"
	RFMaxRequestsPerConnection ResilienceField = "connectionPool.maxRequestsPerConnection"
	RFConnectTimeout           ResilienceField = "connectionPool.connectTimeout"
	RFPoolIdleTimeout          ResilienceField = "connectionPool.idleTimeout"
	RFConsecutive5xx           ResilienceField = "outlierDetection.consecutive5xxErrors"
	RFConsecutiveGateway       ResilienceField = "outlierDetection.consecutiveGatewayErrors"
	RFOutlierInterval          ResilienceField = "outlierDetection.interval"
	RFBaseEjectionTime         ResilienceField = "outlierDetection.baseEjectionTime"
	RFMaxEjectionPercent       ResilienceField = "outlierDetection.maxEjectionPercent"
	RFSuccessRate              ResilienceField = "outlierDetection.successRate"
	RFRoundRobin               ResilienceField = "loadBalancer.algorithm: RoundRobin"
	RFLeastRequest             ResilienceField = "loadBalancer.algorithm: LeastRequest"
	RFRandom                   ResilienceField = "loadBalancer.algorithm: Random"
	RFHashHeader               ResilienceField = "loadBalancer.consistentHash.header"
	RFHashCookie               ResilienceField = "loadBalancer.consistentHash.cookie"
	RFHashSourceIP             ResilienceField = "loadBalancer.consistentHash.sourceIP"
	RFWarmup                   ResilienceField = "loadBalancer.warmup"
	RFRetries                  ResilienceField = "retries.attempts"
	RFRetryPerTryTimeout       ResilienceField = "retries.perTryTimeout"
	RFRetryOn                  ResilienceField = "retries.retryOn"
	RFRetryBudget              ResilienceField = "retries.budget"
	RFRequestTimeout           ResilienceField = "timeouts.request"
	RFIdleTimeout              ResilienceField = "timeouts.idle"
	RFFaultDelay               ResilienceField = "faultInjection.delay"
	RFFaultAbort               ResilienceField = "faultInjection.abort"
	RFFaultHeaders             ResilienceField = "faultInjection.headers"
	RFLocalRateLimit           ResilienceField = "rateLimit.local"
	RFLocalRateLimitPath       ResilienceField = "rateLimit.local.pathPrefix"
	RFGlobalRateLimit          ResilienceField = "rateLimit.global"
)

// ResilienceFields lists every field in documentation order.
var ResilienceFields = []ResilienceField{
	RFMaxConnections, RFMaxPendingRequests, RFMaxRequests, RFMaxRequestsPerConnection, RFConnectTimeout, RFPoolIdleTimeout,
	RFConsecutive5xx, RFConsecutiveGateway, RFOutlierInterval, RFBaseEjectionTime, RFMaxEjectionPercent, RFSuccessRate,
	RFRoundRobin, RFLeastRequest, RFRandom, RFHashHeader, RFHashCookie, RFHashSourceIP, RFWarmup,
	RFRetries, RFRetryPerTryTimeout, RFRetryOn, RFRetryBudget, RFRequestTimeout, RFIdleTimeout,
	RFFaultDelay, RFFaultAbort, RFFaultHeaders, RFLocalRateLimit, RFLocalRateLimitPath, RFGlobalRateLimit,
}

// RouteFields are the fields that live on a route (Istio VirtualService,
// Gateway API HTTPRoute), which composes with a TrafficSplit's route.
var RouteFields = []ResilienceField{
	RFRetries, RFRetryPerTryTimeout, RFRetryOn, RFRequestTimeout, RFFaultDelay, RFFaultAbort, RFFaultHeaders,
}

// ResilienceFieldsOf returns the fields spec sets, in documentation order.
func ResilienceFieldsOf(spec *meshv1alpha1.ResiliencePolicySpec) []ResilienceField {
	var out []ResilienceField
	add := func(on bool, f ResilienceField) {
		if on {
			out = append(out, f)
		}
	}
	if cp := spec.ConnectionPool; cp != nil {
		add(cp.MaxConnections != nil, RFMaxConnections)
		add(cp.MaxPendingRequests != nil, RFMaxPendingRequests)
		add(cp.MaxRequests != nil, RFMaxRequests)
		add(cp.MaxRequestsPerConnection != nil, RFMaxRequestsPerConnection)
		add(cp.ConnectTimeout != nil, RFConnectTimeout)
		add(cp.IdleTimeout != nil, RFPoolIdleTimeout)
	}
	if od := spec.OutlierDetection; od != nil {
		add(od.Consecutive5xxErrors != nil, RFConsecutive5xx)
		add(od.ConsecutiveGatewayErrors != nil, RFConsecutiveGateway)
		add(od.Interval != nil, RFOutlierInterval)
		add(od.BaseEjectionTime != nil, RFBaseEjectionTime)
		add(od.MaxEjectionPercent != nil, RFMaxEjectionPercent)
		add(od.SuccessRate != nil, RFSuccessRate)
	}
	if lb := spec.LoadBalancer; lb != nil {
		add(lb.Algorithm == meshv1alpha1.LoadBalancerRoundRobin, RFRoundRobin)
		add(lb.Algorithm == meshv1alpha1.LoadBalancerLeastRequest, RFLeastRequest)
		add(lb.Algorithm == meshv1alpha1.LoadBalancerRandom, RFRandom)
		if h := lb.ConsistentHash; h != nil {
			add(h.Header != "", RFHashHeader)
			add(h.Cookie != nil, RFHashCookie)
			add(h.SourceIP, RFHashSourceIP)
		}
		add(lb.Warmup != nil, RFWarmup)
	}
	if r := spec.Retries; r != nil {
		add(true, RFRetries)
		add(r.PerTryTimeout != nil, RFRetryPerTryTimeout)
		add(len(r.RetryOn) > 0, RFRetryOn)
		add(r.Budget != nil, RFRetryBudget)
	}
	if t := spec.Timeouts; t != nil {
		add(t.Request != nil, RFRequestTimeout)
		add(t.Idle != nil, RFIdleTimeout)
	}
	if f := spec.FaultInjection; f != nil {
		add(f.Delay != nil, RFFaultDelay)
		add(f.Abort != nil, RFFaultAbort)
		add(len(f.Headers) > 0, RFFaultHeaders)
	}
	if rl := spec.RateLimit; rl != nil {
		add(true, RFLocalRateLimit)
		add(rl.Local.PathPrefix != "", RFLocalRateLimitPath)
		add(rl.Global != nil, RFGlobalRateLimit)
	}
	return out
}

// Support is one mesh's answer for one field in one scope.
type Support struct {
	// Enforced is true when the mesh enforces the field there.
	Enforced bool
	// Detail is what the field becomes (enforced), or why it is refused
	// and what to change.
	Detail string
}

// Enforced returns an enforced answer saying what the field becomes.
func Enforced(as string) Support { return Support{Enforced: true, Detail: as} }

// Refused returns a refusal saying why and what to change.
func Refused(why string) Support { return Support{Detail: why} }

// ResilienceInput is what a translation of a ResiliencePolicy needs beside
// the policy: the target Service as it exists, the scope (install and
// namespace facts), and the TrafficSplit that routes the target, if one
// does, whose route carries the policy's route-level fields instead of a
// route of the policy's own.
type ResilienceInput struct {
	// Policy is the ResiliencePolicy.
	Policy *meshv1alpha1.ResiliencePolicy
	// Service is the target Service.
	Service *corev1.Service
	// Scope is the mesh as installed, seen from the namespace.
	Scope Scope
	// ComposedWith is the TrafficSplit that routes the target (its route
	// carries retries, timeouts and faults), nil when none does.
	ComposedWith *meshv1alpha1.TrafficSplit
	// Routed is the TrafficSplit that routes the target whether or not it
	// carries the policy's fields (nil when none does): a mesh whose
	// route and policy outputs cannot both apply to one Service refuses.
	Routed *meshv1alpha1.TrafficSplit
	// InboundTargets are the namespace's inbound policy targets a mesh's
	// inbound limits attach to (InboundTargetReader), nil when the mesh
	// reads none.
	InboundTargets []unstructured.Unstructured
}

// RouteClashError is a refusal because the policy's outputs and the route
// of another object for the same Service (a TrafficSplit's) cannot both
// apply: the controller removes the policy's outputs of an earlier
// generation, so the Service never has both.
type RouteClashError struct {
	*UnsupportedFeatureError
}

// Unwrap returns the UnsupportedFeatureError.
func (e *RouteClashError) Unwrap() error { return e.UnsupportedFeatureError }

// ResilienceSupporter is implemented by every mesh that answers the
// per-field report, translator or not.
type ResilienceSupporter interface {
	Provider
	// ResilienceSupport says whether the mesh, in scope s, enforces field
	// f, and as what or why not. It is pure.
	ResilienceSupport(s Scope, f ResilienceField) Support
}

// ResilienceTranslator turns a ResiliencePolicy into the mesh's objects.
type ResilienceTranslator interface {
	ResilienceSupporter
	// ResilienceOutputKinds returns one empty object, with TypeMeta set,
	// per kind TranslateResiliencePolicy may return (owned outputs).
	ResilienceOutputKinds() []client.Object
	// TranslateResiliencePolicy returns the desired objects, or an
	// *UnsupportedFeatureError (a field the mesh refuses in the scope) or
	// a terminal error naming the field. It is pure.
	TranslateResiliencePolicy(in ResilienceInput) ([]client.Object, error)
}

// RouteComposer is implemented by meshes whose TrafficSplit route carries
// a ResiliencePolicy's route-level fields for the same Service.
type RouteComposer interface {
	// ComposeRoute returns objs (a TrafficSplit's translation) with the
	// route-level fields of rp set on its route. It is pure; objs may be
	// modified.
	ComposeRoute(objs []client.Object, rp *meshv1alpha1.ResiliencePolicy) ([]client.Object, error)
}

// ResilienceTranslator returns the named provider's ResilienceTranslator.
func (r *Registry) ResilienceTranslator(name meshv1alpha1.Provider) (ResilienceTranslator, error) {
	return lookup[ResilienceTranslator](r, name, "resilience (ResiliencePolicy)")
}

// ResilienceOutputKinds returns the kinds every registered resilience
// translator may write, each once, in provider order.
func (r *Registry) ResilienceOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(ResilienceTranslator); ok {
			out = appendKinds(out, t.ResilienceOutputKinds())
		}
	}
	return out
}

// RouteComposer returns the named provider's RouteComposer, and false
// when the mesh does not compose routes (or is not registered).
func (r *Registry) RouteComposer(name meshv1alpha1.Provider) (RouteComposer, bool) {
	p, err := r.Get(name)
	if err != nil {
		return nil, false
	}
	c, ok := p.(RouteComposer)
	return c, ok
}

// DefaultScope is a mesh installed by a MeshInstall with Meshplane's
// defaults, seen from a namespace with the mesh's usual data plane: the
// scope the report and the docs answer for a mesh that is not selected.
func DefaultScope(p meshv1alpha1.Provider) Scope {
	mode := map[meshv1alpha1.Provider]DataPlaneMode{
		meshv1alpha1.ProviderIstio: Sidecar, meshv1alpha1.ProviderLinkerd: LinkerdProxy, meshv1alpha1.ProviderCilium: CiliumNode,
	}[p]
	return Scope{
		Install:   InstallFacts{Provider: p, Envoy: true, GatewayAPI: true, GatewayAPICRDs: true},
		Namespace: NamespaceFacts{Mode: mode},
	}
}

// ResilienceReport answers every field spec sets for every registered
// resilience supporter: the selected provider in scope s, the others in
// their DefaultScope. Entries are ordered by field, then provider.
func (r *Registry) ResilienceReport(s Scope, spec *meshv1alpha1.ResiliencePolicySpec) []meshv1alpha1.FieldSupport {
	var out []meshv1alpha1.FieldSupport
	for _, f := range ResilienceFieldsOf(spec) {
		for _, p := range r.Providers() {
			t, ok := p.(ResilienceSupporter)
			if !ok {
				continue
			}
			scope := DefaultScope(p.Name())
			if p.Name() == s.Install.Provider {
				scope = s
			}
			sup := t.ResilienceSupport(scope, f)
			fs := meshv1alpha1.FieldSupport{Field: string(f), Provider: p.Name(), State: meshv1alpha1.FieldRefused, Detail: clip(sup.Detail, 1024)}
			if sup.Enforced {
				fs.State = meshv1alpha1.FieldEnforced
			}
			out = append(out, fs)
		}
	}
	return out
}

// DecideResilience returns nil when t enforces every field of spec in s,
// or an *UnsupportedFeatureError naming each refused field and why.
func DecideResilience(t ResilienceSupporter, s Scope, spec *meshv1alpha1.ResiliencePolicySpec) error {
	var features []Capability
	var why []string
	for _, f := range ResilienceFieldsOf(spec) {
		if sup := t.ResilienceSupport(s, f); !sup.Enforced {
			features = append(features, Capability(f))
			why = append(why, string(f)+": "+sup.Detail)
		}
	}
	if len(features) == 0 {
		return nil
	}
	return &UnsupportedFeatureError{Provider: t.Name(), Features: features, Where: s.Where(),
		Detail: strings.Join(why, "; "),
		Fix:    "choose a mesh that enforces them (status.support lists each mesh's answer)"}
}

// ClashingRouteFields returns the route-level fields a TrafficSplit and a
// ResiliencePolicy both set: one route cannot carry two values.
func ClashingRouteFields(ts *meshv1alpha1.TrafficSplitSpec, rp *meshv1alpha1.ResiliencePolicySpec) []string {
	var out []string
	if ts.Retries != nil && rp.Retries != nil {
		out = append(out, "retries (TrafficSplit spec.retries, ResiliencePolicy spec.retries)")
	}
	if ts.Timeout != nil && rp.Timeouts != nil && rp.Timeouts.Request != nil {
		out = append(out, "request timeout (TrafficSplit spec.timeout, ResiliencePolicy spec.timeouts.request)")
	}
	return out
}

// HasRouteFields reports whether spec sets a route-level field.
func HasRouteFields(spec *meshv1alpha1.ResiliencePolicySpec) bool {
	for _, f := range ResilienceFieldsOf(spec) {
		for _, rf := range RouteFields {
			if f == rf {
				return true
			}
		}
	}
	return false
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// ResilienceOwner renders a policy for messages: "ResiliencePolicy ns/name".
func ResilienceOwner(rp *meshv1alpha1.ResiliencePolicy) string {
	return fmt.Sprintf("ResiliencePolicy %s/%s", rp.Namespace, rp.Name)
}
