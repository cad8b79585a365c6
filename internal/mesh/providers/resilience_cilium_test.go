package providers

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// ciliumInput is one Cilium-specific translation: the policy, the scope
// (nil: the default scope), the Service (nil: webService) and the split
// that routes the target, composing (its route carries the timeout) or
// not.
type ciliumInput struct {
	name     string
	spec     meshv1alpha1.ResiliencePolicySpec
	version  string
	service  *corev1.Service
	split    bool
	composed bool
}

// ciliumResilienceCases are the Cilium cases beyond one field per case:
// how fields combine into one CiliumEnvoyConfig, composition with a
// TrafficSplit's HTTPRoute, and the refusals of two Envoy redirects for one
// Service, of an old Cilium and of an ambiguous port.
var ciliumResilienceCases = []ciliumInput{
	{name: "cilium-rp-timeout-outlier", spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("15s"), Idle: dur("1m")}
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{ConsecutiveGatewayErrors: ptr[int32](3)}
	})},
	{name: "cilium-rp-lb-pool", spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}
		s.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxRequests: ptr[int32](50)}
	})},
	{name: "cilium-rp-lb-timeout", spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRandom}
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("15s")}
	})},
	{name: "cilium-rp-lb-split", split: true, spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRandom}
	})},
	{name: "cilium-rp-outlier-split", split: true, spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](5)}
	})},
	{name: "cilium-composed-ts-timeout", split: true, composed: true, spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("15s")}
	})},
	{name: "cilium-rp-timeout-other-port", split: true, composed: true, service: twoPortService(), spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.TargetRef.Port = ptr[int32](9090)
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("2s")}
	})},
	{name: "cilium-rp-timeout-two-ports", service: twoPortService(), spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("2s")}
	})},
	{name: "cilium-rp-old-cilium", version: "1.13.4", spec: rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: 1e9}}}
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("15s")}
	})},
}

// ciliumRefuses are the cases Cilium refuses, with a text the refusal
// names.
var ciliumRefuses = map[string]string{
	"rp-lb-round-robin-warmup.cilium":    "loadBalancer.warmup",
	"rp-lb-hash-header.cilium":           "loadBalancer.consistentHash.header",
	"rp-lb-hash-cookie.cilium":           "loadBalancer.consistentHash.cookie",
	"rp-lb-hash-source-ip.cilium":        "loadBalancer.consistentHash.sourceIP",
	"rp-retries-budget.cilium":           "retries.attempts",
	"rp-port-pool-outlier.cilium":        "retries.budget",
	"cilium-rp-lb-timeout.cilium":        "loadBalancer.algorithm: Random",
	"cilium-rp-lb-split.cilium":          "TrafficSplit web-split's HTTPRoute",
	"cilium-rp-outlier-split.cilium":     "TrafficSplit web-split routes Service web",
	"cilium-rp-timeout-two-ports.cilium": "Service web has TCP ports [8080 9090]",
	"cilium-rp-old-cilium.cilium":        "needs Cilium 1.14 or later; installed 1.13.4",
	"rp-rate-limit-path.cilium":          "rateLimit.local.pathPrefix",
	"rp-rate-limit-global.cilium":        "rateLimit.global",
	"rp-rate-limit-global-path.cilium":   "rateLimit.local.pathPrefix",
}

func twoPortService() *corev1.Service {
	svc := webService()
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "admin", Port: 9090, TargetPort: intstr.FromInt32(9090)})
	return svc
}

// ciliumResilience translates the Cilium cases: the split's HTTPRoute
// (with the policy composed into it) first, then the policy's own outputs.
func ciliumResilience() []translation {
	reg := Registry()
	t, _ := reg.ResilienceTranslator(meshv1alpha1.ProviderCilium)
	var out []translation
	for _, tc := range ciliumResilienceCases {
		rp := resiliencePolicy(tc.spec)
		scope := mesh.DefaultScope(meshv1alpha1.ProviderCilium)
		scope.Namespace.Name = "shop"
		scope.Install.Version = tc.version
		in := mesh.ResilienceInput{Policy: rp, Service: tc.service, Scope: scope}
		if in.Service == nil {
			in.Service = webService()
		}
		var objs []client.Object
		if tc.split {
			ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web-split", Namespace: "shop"}, Spec: tsSpec(nil)}
			in.Routed = ts
			if tc.composed {
				in.ComposedWith = ts
				tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderCilium)
				split, err := tt.TranslateTrafficSplit(ts)
				if err == nil {
					composer, _ := reg.RouteComposer(meshv1alpha1.ProviderCilium)
					split, err = composer.ComposeRoute(split, rp)
				}
				if err != nil {
					out = append(out, translation{golden: tc.name + ".cilium", err: err})
					continue
				}
				objs = split
			}
		}
		own, err := t.TranslateResiliencePolicy(in)
		if err != nil {
			objs = nil
		}
		out = append(out, translation{golden: tc.name + ".cilium", objs: append(objs, own...), err: err})
	}
	return out
}

// TestCiliumComposedRoute: the split's HTTPRoute carries the policy's
// request timeout on every rule, and the policy writes no route of its
// own; a policy for another port writes its own route for that port and
// leaves the split's alone.
func TestCiliumComposedRoute(t *testing.T) {
	for _, tr := range ciliumResilience() {
		switch tr.golden {
		case "cilium-composed-ts-timeout.cilium":
			if tr.err != nil || len(tr.objs) != 1 {
				t.Fatalf("composed: %v %v", tr.objs, tr.err)
			}
			hr := tr.objs[0].(*gatewayv1.HTTPRoute)
			for _, r := range hr.Spec.Rules {
				if r.Timeouts == nil || r.Timeouts.Request == nil || *r.Timeouts.Request != "15s" {
					t.Errorf("rule %v has no 15s request timeout", r.Name)
				}
			}
		case "cilium-rp-timeout-other-port.cilium":
			if tr.err != nil || len(tr.objs) != 2 {
				t.Fatalf("other port: %v %v", tr.objs, tr.err)
			}
			split, own := tr.objs[0].(*gatewayv1.HTTPRoute), tr.objs[1].(*gatewayv1.HTTPRoute)
			if split.Spec.Rules[0].Timeouts != nil || *own.Spec.ParentRefs[0].Port != 9090 || *own.Spec.Rules[0].Timeouts.Request != "2s" {
				t.Errorf("other port: split %+v own %+v", split.Spec.Rules[0].Timeouts, own.Spec)
			}
		}
	}
}

// TestCiliumResilienceSupportReport: every field Cilium translates is
// reported Enforced with what it becomes, the others Refused with why.
func TestCiliumResilienceSupportReport(t *testing.T) {
	p, _ := Registry().Get(meshv1alpha1.ProviderCilium)
	s := p.(mesh.ResilienceSupporter)
	scope := mesh.DefaultScope(meshv1alpha1.ProviderCilium)
	refused := map[mesh.ResilienceField]bool{mesh.RFHashHeader: true, mesh.RFHashCookie: true, mesh.RFHashSourceIP: true, mesh.RFWarmup: true,
		mesh.RFRetries: true, mesh.RFRetryPerTryTimeout: true, mesh.RFRetryOn: true, mesh.RFRetryBudget: true,
		mesh.RFLocalRateLimitPath: true, mesh.RFGlobalRateLimit: true}
	for _, f := range mesh.ResilienceFields {
		sup := s.ResilienceSupport(scope, f)
		if sup.Enforced == refused[f] || sup.Detail == "" {
			t.Errorf("%s: %+v", f, sup)
		}
		if sup.Enforced && !strings.Contains(sup.Detail, "CiliumEnvoyConfig") && !strings.Contains(sup.Detail, "HTTPRoute") && !strings.Contains(sup.Detail, "service.cilium.io/lb-l7") {
			t.Errorf("%s: enforced as %q names no Cilium output", f, sup.Detail)
		}
	}
	noGateway := scope
	noGateway.Install.GatewayAPI = false
	if sup := s.ResilienceSupport(noGateway, mesh.RFRequestTimeout); sup.Enforced || !strings.Contains(sup.Detail, "spec.cilium.gatewayAPI") {
		t.Errorf("timeout without Gateway API: %+v", sup)
	}
	var uf *mesh.UnsupportedFeatureError
	rp := resiliencePolicy(rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) { s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("1s")} }))
	tr, _ := Registry().ResilienceTranslator(meshv1alpha1.ProviderCilium)
	if _, err := tr.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: webService(), Scope: noGateway}); !errors.As(err, &uf) {
		t.Errorf("timeout without Gateway API translated: %v", err)
	}
}
