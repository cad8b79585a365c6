package oracle

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

// genRateLimit adds to rp, at random, a local rate limit with or without
// a path prefix and burst, and a global one with descriptors from the
// path, a header and a constant.
func genRateLimit(rng *rand.Rand, rp *meshv1alpha1.ResiliencePolicy) {
	if rng.IntN(4) == 0 {
		return
	}
	rl := &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: int32(1 + rng.IntN(1000)),
		Interval: metav1.Duration{Duration: pick(rng, time.Second, 90*time.Second, 250*time.Millisecond)}}}
	if rng.IntN(2) == 0 {
		b := rl.Local.Requests + int32(rng.IntN(100))
		rl.Local.Burst = &b
	}
	rl.Local.PathPrefix = pick(rng, "", "", "/api", "/")
	if rng.IntN(2) == 0 {
		g := &meshv1alpha1.GlobalRateLimit{Service: meshv1alpha1.RateLimitService{Name: "ratelimit", Namespace: pick(rng, "", "infra"), Port: 8081},
			Domain: pick(rng, "shop", "edge"), FailClosed: rng.IntN(2) == 0}
		if rng.IntN(2) == 0 {
			g.Timeout = &metav1.Duration{Duration: pick(rng, 5*time.Millisecond, 2*time.Second)}
		}
		for range 1 + rng.IntN(3) {
			g.Descriptors = append(g.Descriptors, pick(rng,
				meshv1alpha1.RateLimitDescriptor{Key: "PATH", Path: true},
				meshv1alpha1.RateLimitDescriptor{Key: "user", Header: "X-User"},
				meshv1alpha1.RateLimitDescriptor{Key: "service", Value: "web"}))
		}
		rl.Global = g
	}
	rp.Spec.RateLimit = rl
}

// TestRateLimitOracle is the property for Istio's rate limits: for random
// local (whole or per path prefix) and global limits, every sample request
// on every port meets the bucket the policy asks for (none outside the
// target port or the prefix) and sends the rate-limit service the
// descriptor the policy asks for, through the service's cluster.
func TestRateLimitOracle(t *testing.T) {
	it, err := providers.Registry().ResilienceTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(9080)}, {Port: 9090}}}}
	containerPort := map[int32]int64{8080: 9080, 9090: 9090}
	checked := map[string]int{}
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed>>2|1))
		rp := genResilience(rng)
		genRateLimit(rng, rp)
		objs, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: svc, Scope: mesh.DefaultScope(meshv1alpha1.ProviderIstio)})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, r := range resilienceRequests() {
			got := IstioRateLimitFor(objs, containerPort[r.Port], r)
			want := RateLimitIntent(&rp.Spec, ns, r)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, %+v:\n got local %+v global %+v\nwant local %+v global %+v\nrate limit %+v", seed, r, got.Local, got.Global, want.Local, want.Global, rp.Spec.RateLimit)
			}
			switch {
			case want.Global != nil && len(want.Global.Descriptors) > 0:
				checked["global call"]++
			case want.Global != nil:
				checked["global, no descriptor"]++
			}
			switch {
			case want.Local != nil && rp.Spec.RateLimit.Local.PathPrefix != "":
				checked["per-route bucket"]++
			case want.Local != nil:
				checked["bucket"]++
			case rp.Spec.RateLimit != nil:
				checked["not limited"]++
			}
		}
	}
	for _, k := range []string{"global call", "global, no descriptor", "per-route bucket", "bucket", "not limited"} {
		if checked[k] == 0 {
			t.Errorf("no %s case checked: %v", k, checked)
		}
	}
	t.Logf("checked: %v", checked)
}

// TestComposedCanaryOracle: a Canary's route is a TrafficSplit's
// translation (the routed Service split between <svc>-primary and
// <svc>-canary, with the Canary's retries and timeout); composed with a
// random policy, every sample request gets the policy's retries, timeout
// and faults, the Canary's where the policy sets none, and goes where the
// step sends it.
func TestComposedCanaryOracle(t *testing.T) {
	reg := providers.Registry()
	composer, _ := reg.RouteComposer(meshv1alpha1.ProviderIstio)
	tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderIstio)
	checked := 0
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed>>3|1))
		rp := genResilience(rng)
		weight := pick[int32](rng, 0, 10, 50, 100)
		port := int32(8080)
		route := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web", Port: &port},
				Backends:      []meshv1alpha1.WeightedBackend{{Name: "web-primary", Weight: 100 - weight}, {Name: "web-canary", Weight: weight}},
				StableBackend: "web-primary"}}
		if rng.IntN(3) == 0 {
			route.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2}
		}
		if rng.IntN(3) == 0 {
			route.Spec.Timeout = &metav1.Duration{Duration: 7 * time.Second}
		}
		if len(mesh.ClashingRouteFields(&route.Spec, &rp.Spec)) > 0 {
			continue // a Conflict: nothing composed
		}
		objs, err := tt.TranslateTrafficSplit(route)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		composed, err := composer.ComposeRoute(objs, rp)
		if err != nil {
			continue // refused (a header both match): reported, nothing composed
		}
		for _, r := range resilienceRequests() {
			got, ok := IstioBehaviour(composed, r)
			want := ResilienceIntent(&rp.Spec, Routes(&route.Spec, r), r)
			if route.Spec.Retries != nil && want.Attempts == 0 {
				want.Attempts = route.Spec.Retries.Attempts
			}
			if route.Spec.Timeout != nil && want.Timeout == 0 {
				want.Timeout = route.Spec.Timeout.Duration
			}
			if !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, weight %d, %+v:\n got %+v (ok %v)\nwant %+v\npolicy %+v", seed, weight, r, got, ok, want, rp.Spec)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no composed Canary route checked")
	}
	t.Logf("checked %d requests on composed Canary routes", checked)
}
