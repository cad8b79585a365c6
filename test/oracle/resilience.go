package oracle

import (
	"slices"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Behaviour is what happens to one request beside where it goes: the
// retries, the request timeout and the injected faults it gets.
type Behaviour struct {
	// Route is where the request goes (weights by host).
	Route Route
	// Attempts are the retries after the first try (0: none).
	Attempts int32
	// PerTry bounds each attempt; Timeout the whole request (0: none).
	PerTry, Timeout time.Duration
	// AbortStatus and AbortPercent abort a share of the requests.
	AbortStatus, AbortPercent int32
	// Delay and DelayPercent delay a share of the requests.
	Delay        time.Duration
	DelayPercent int32
}

// IstioBehaviour is what Istio's sidecar does with r given the
// VirtualServices in objs: the first http route whose any match matches
// decides (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute:
// retries, timeout and fault are per route). ok is false when no route
// matches (404).
func IstioBehaviour(objs []client.Object, r Request) (Behaviour, bool) {
	for _, o := range objs {
		vs, isVS := o.(*istionetworking.VirtualService)
		if !isVS {
			continue
		}
		for _, hr := range vs.Spec.GetHttp() {
			if len(hr.GetMatch()) > 0 && !slices.ContainsFunc(hr.GetMatch(), func(m *networkingv1alpha3.HTTPMatchRequest) bool { return vsMatch(m, r) }) {
				continue
			}
			route, _ := VirtualServiceRoutes([]client.Object{&istionetworking.VirtualService{Spec: networkingv1alpha3.VirtualService{Http: []*networkingv1alpha3.HTTPRoute{hr}}}}, r)
			b := Behaviour{Route: route, Attempts: hr.GetRetries().GetAttempts(), PerTry: hr.GetRetries().GetPerTryTimeout().AsDuration(),
				Timeout: hr.GetTimeout().AsDuration()}
			if a := hr.GetFault().GetAbort(); a != nil {
				b.AbortStatus, b.AbortPercent = a.GetHttpStatus(), int32(a.GetPercentage().GetValue())
			}
			if d := hr.GetFault().GetDelay(); d != nil {
				b.Delay, b.DelayPercent = d.GetFixedDelay().AsDuration(), int32(d.GetPercentage().GetValue())
			}
			return b, true
		}
	}
	return Behaviour{}, false
}

// ResilienceIntent is what a ResiliencePolicy asks for r, sent where route
// sends it (the policy's target alone, or a TrafficSplit's routes): on the
// target port (every port when unset) the policy's retries and request
// timeout, and its faults when r carries every fault header.
func ResilienceIntent(spec *meshv1alpha1.ResiliencePolicySpec, route Route, r Request) Behaviour {
	b := Behaviour{Route: route}
	if p := spec.TargetRef.Port; p != nil && *p != r.Port {
		return b
	}
	if rt := spec.Retries; rt != nil {
		b.Attempts = rt.Attempts
		if rt.PerTryTimeout != nil {
			b.PerTry = rt.PerTryTimeout.Duration
		}
	}
	if t := spec.Timeouts; t != nil && t.Request != nil {
		b.Timeout = t.Request.Duration
	}
	f := spec.FaultInjection
	if f == nil || !intentMatch(meshv1alpha1.HTTPMatch{Headers: f.Headers}, r) {
		return b
	}
	if a := f.Abort; a != nil {
		b.AbortStatus, b.AbortPercent = a.HTTPStatus, a.Percent
	}
	if d := f.Delay; d != nil {
		b.Delay, b.DelayPercent = d.FixedDelay.Duration, d.Percent
	}
	return b
}

// LocalRateLimit is a token bucket on the inbound side of the pods a
// selector picks, on one port (0: every port).
type LocalRateLimit struct {
	Selector             map[string]string
	Port                 int64
	Tokens, PerFill      int64
	Interval             string
	Enabled, Enforced100 bool
}

// IstioRateLimit reads the local rate limit an EnvoyFilter in objs
// configures (https://istio.io/latest/docs/tasks/policy-enforcement/rate-limit/#local-rate-limit):
// an envoy.filters.http.local_ratelimit filter inserted into the
// SIDECAR_INBOUND HTTP connection manager of the selected workloads,
// enforced on the share filter_enforced gives. ok is false when there is
// none, or it would not apply (another context or filter).
func IstioRateLimit(objs []client.Object) (LocalRateLimit, bool) {
	for _, o := range objs {
		u, isU := o.(*unstructured.Unstructured)
		if !isU || u.GetKind() != "EnvoyFilter" {
			continue
		}
		var rl LocalRateLimit
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "workloadSelector", "labels")
		rl.Selector = sel
		patches, _, _ := unstructured.NestedSlice(u.Object, "spec", "configPatches")
		for _, p := range patches {
			pm, _ := p.(map[string]any)
			ctx, _, _ := unstructured.NestedString(pm, "match", "context")
			name, _, _ := unstructured.NestedString(pm, "patch", "value", "name")
			if pm["applyTo"] != "HTTP_FILTER" || ctx != "SIDECAR_INBOUND" || name != "envoy.filters.http.local_ratelimit" {
				continue
			}
			rl.Port, _, _ = unstructured.NestedInt64(pm, "match", "listener", "portNumber")
			v, _, _ := unstructured.NestedMap(pm, "patch", "value", "typed_config", "value")
			rl.Tokens, _, _ = unstructured.NestedInt64(v, "token_bucket", "max_tokens")
			rl.PerFill, _, _ = unstructured.NestedInt64(v, "token_bucket", "tokens_per_fill")
			rl.Interval, _, _ = unstructured.NestedString(v, "token_bucket", "fill_interval")
			en, _, _ := unstructured.NestedInt64(v, "filter_enabled", "default_value", "numerator")
			enf, _, _ := unstructured.NestedInt64(v, "filter_enforced", "default_value", "numerator")
			rl.Enabled, rl.Enforced100 = en == 100, enf == 100
			return rl, true
		}
	}
	return LocalRateLimit{}, false
}
