package providers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

func (g *gen) dur(options ...string) *metav1.Duration {
	d, _ := time.ParseDuration(pick(g, options...))
	return &metav1.Duration{Duration: d}
}

func (g *gen) i32(options ...int32) *int32 {
	v := pick(g, options...)
	return &v
}

// resiliencePolicy builds a policy from fuzz bytes; fields set or not by
// the bytes, values at and beyond the bounds (the CRD decides).
func (g *gen) resiliencePolicy() *meshv1alpha1.ResiliencePolicy {
	s := meshv1alpha1.ResiliencePolicySpec{TargetRef: meshv1alpha1.ServiceReference{Name: "web"}}
	if g.intn(2) == 1 {
		s.TargetRef.Port = g.i32(8080, 9999)
	}
	if g.intn(2) == 1 {
		s.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxConnections: g.i32(1, 1000000, 0), ConnectTimeout: g.dur("1ms", "1h", "2h")}
	}
	if g.intn(2) == 1 {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: g.i32(1, 1000, 1001), MaxEjectionPercent: g.i32(0, 100, 101), Interval: g.dur("10s", "0s")}
		if g.intn(3) == 0 {
			s.OutlierDetection.SuccessRate = &meshv1alpha1.SuccessRateEjection{MinimumHosts: 5, RequestVolume: 100, StdevFactor: 1900}
		}
	}
	if g.intn(2) == 1 {
		lb := &meshv1alpha1.LoadBalancer{Algorithm: pick(g, meshv1alpha1.LoadBalancerRoundRobin, meshv1alpha1.LoadBalancerLeastRequest, meshv1alpha1.LoadBalancerRandom, meshv1alpha1.LoadBalancerConsistentHash)}
		if lb.Algorithm == meshv1alpha1.LoadBalancerConsistentHash || g.intn(4) == 0 {
			lb.ConsistentHash = pick(g, &meshv1alpha1.ConsistentHash{Header: "x-user"}, &meshv1alpha1.ConsistentHash{SourceIP: true},
				&meshv1alpha1.ConsistentHash{Cookie: &meshv1alpha1.HashCookie{Name: "s"}}, &meshv1alpha1.ConsistentHash{})
		}
		if g.intn(2) == 1 {
			lb.Warmup = g.dur("30s", "2h")
		}
		s.LoadBalancer = lb
	}
	if g.intn(2) == 1 {
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: pick[int32](g, 1, 10, 11), PerTryTimeout: g.dur("1s", "20s")}}
		if g.intn(2) == 1 {
			s.Retries.Budget = &meshv1alpha1.RetryBudget{Percent: pick[int32](g, 1, 100, 0)}
		}
	}
	if g.intn(2) == 1 {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: g.dur("10s", "1h")}
	}
	if g.intn(2) == 1 {
		f := &meshv1alpha1.FaultInjection{}
		if g.intn(2) == 1 {
			f.Delay = &meshv1alpha1.FaultDelay{FixedDelay: *g.dur("100ms"), Percent: pick[int32](g, 0, 50, 100, 101)}
		}
		if g.intn(2) == 1 {
			f.Abort = &meshv1alpha1.FaultAbort{HTTPStatus: pick[int32](g, 200, 503, 600), Percent: 10}
		}
		if g.intn(2) == 1 {
			f.Headers = []meshv1alpha1.HTTPHeaderMatch{{Name: "X-Chaos", Type: meshv1alpha1.HeaderMatchExact, Value: "on"}}
		}
		s.FaultInjection = f
	}
	if g.intn(2) == 1 {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: pick[int32](g, 1, 100), Interval: *g.dur("1s", "10ms"), Burst: g.i32(1, 500),
			PathPrefix: pick(g, "", "/api", "api")}}
		if g.intn(2) == 1 {
			s.RateLimit.Global = &meshv1alpha1.GlobalRateLimit{Service: meshv1alpha1.RateLimitService{Name: pick(g, "ratelimit", "Bad Name"), Port: pick[int32](g, 8081, 0)},
				Domain: pick(g, "shop", ""), Descriptors: []meshv1alpha1.RateLimitDescriptor{
					pick(g, meshv1alpha1.RateLimitDescriptor{Key: "PATH", Path: true}, meshv1alpha1.RateLimitDescriptor{Key: "u", Header: "X-User"},
						meshv1alpha1.RateLimitDescriptor{Key: "k"}, meshv1alpha1.RateLimitDescriptor{Key: "v", Value: "x", Header: "y"})}}
		}
	}
	return &meshv1alpha1.ResiliencePolicy{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "ResiliencePolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: s}
}

// FuzzResilienceTranslation: every policy the CRD accepts translates, for
// every mesh, deterministically into outputs the real CRDs accept, or is
// refused whole (terminal); Istio, Linkerd and Cilium refuse exactly the
// fields their reports refuse; Linkerd's Service annotations carry exactly
// the policy's values, Cilium's outputs carry what the policy asks for
// (checkCiliumResilience), and Istio's VirtualService carries the retries
// and the fault the policy asks for on every route.
func FuzzResilienceTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []byte("resilience-policy-seed-with-every-field")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		rp := (&gen{b: data}).resiliencePolicy()
		if !accepted(t, v, rp) {
			return
		}
		for _, p := range meshv1alpha1.Providers {
			objs := checkOutputs(t, v, "ResiliencePolicy on "+string(p), func() ([]client.Object, error) {
				return translateResilience(p, rp.DeepCopy(), nil)
			})
			switch p {
			case meshv1alpha1.ProviderLinkerd:
				checkLinkerdResilience(t, rp, objs)
			case meshv1alpha1.ProviderCilium:
				checkCiliumResilience(t, rp, objs)
			}
			if p != meshv1alpha1.ProviderIstio {
				continue
			}
			prov, _ := Registry().Get(p)
			refuses := mesh.DecideResilience(prov.(mesh.ResilienceSupporter), mesh.DefaultScope(p), &rp.Spec) != nil
			if refuses != (objs == nil) {
				t.Fatalf("Istio: report refuses %v, translation returned %d objects", refuses, len(objs))
			}
			for _, o := range objs {
				if o["kind"] != "VirtualService" {
					continue
				}
				for _, r := range o["spec"].(map[string]any)["http"].([]any) {
					route := r.(map[string]any)
					if route["name"] == "other-ports" {
						continue
					}
					_, hasRetries := route["retries"]
					if hasRetries != (rp.Spec.Retries != nil) {
						t.Fatalf("route %v: retries %v, policy %v", route["name"], hasRetries, rp.Spec.Retries)
					}
					_, hasFault := route["fault"]
					wantFault := rp.Spec.FaultInjection != nil && (len(rp.Spec.FaultInjection.Headers) == 0 || strings.HasPrefix(fmt.Sprint(route["name"]), "fault"))
					if hasFault != wantFault {
						t.Fatalf("route %v: fault %v, want %v", route["name"], hasFault, wantFault)
					}
				}
			}
		}
	})
}
