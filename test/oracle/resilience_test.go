package oracle

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

func genResilience(rng *rand.Rand) *meshv1alpha1.ResiliencePolicy {
	d := func(s string) *metav1.Duration { v, _ := time.ParseDuration(s); return &metav1.Duration{Duration: v} }
	s := meshv1alpha1.ResiliencePolicySpec{TargetRef: meshv1alpha1.ServiceReference{Name: "web"}}
	if rng.IntN(2) == 0 {
		p := int32(8080)
		s.TargetRef.Port = &p
	}
	if rng.IntN(2) == 0 {
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: int32(1 + rng.IntN(10))}}
		if rng.IntN(2) == 0 {
			s.Retries.PerTryTimeout = d(pick(rng, "100ms", "2s"))
		}
	}
	if rng.IntN(2) == 0 {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: d(pick(rng, "5s", "30s"))}
	}
	if rng.IntN(2) == 0 {
		f := &meshv1alpha1.FaultInjection{}
		if rng.IntN(2) == 0 {
			f.Abort = &meshv1alpha1.FaultAbort{HTTPStatus: pick[int32](rng, 500, 503), Percent: int32(rng.IntN(101))}
		}
		if f.Abort == nil || rng.IntN(2) == 0 {
			f.Delay = &meshv1alpha1.FaultDelay{FixedDelay: *d("1s"), Percent: int32(rng.IntN(101))}
		}
		if rng.IntN(2) == 0 {
			f.Headers = []meshv1alpha1.HTTPHeaderMatch{{Name: pick(rng, "X-Chaos", "x-user"), Type: meshv1alpha1.HeaderMatchExact, Value: "on"}}
		}
		s.FaultInjection = f
	}
	if rng.IntN(3) == 0 {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: int32(1 + rng.IntN(1000)), Interval: *d(pick(rng, "1s", "1m30s", "250ms"))}}
	}
	if s.Retries == nil && s.Timeouts == nil && s.FaultInjection == nil && s.RateLimit == nil {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: d("1s")}
	}
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "rp", Namespace: ns}, Spec: s}
}

func resilienceRequests() []Request {
	var out []Request
	for _, port := range []int32{8080, 9090} {
		for _, h := range []map[string]string{nil, {"x-chaos": "on"}, {"x-user": "on"}, {"x-chaos": "off"}} {
			for _, path := range []string{"/", "/api/x"} {
				out = append(out, Request{Meshed: true, Namespace: ns, ServiceAccount: "frontend", Port: port, Method: "GET", Path: path, Headers: h})
			}
		}
	}
	return out
}

// TestResilienceOracle is the property for Istio: for random policies,
// alone and composed into a TrafficSplit's VirtualService, every sample
// request gets exactly the retries, timeout and faults the policy asks
// for, goes where it went before, and the local rate limit applies the
// bucket asked for to the target's pods on the target port.
func TestResilienceOracle(t *testing.T) {
	reg := providers.Registry()
	it, err := reg.ResilienceTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	composer, _ := reg.RouteComposer(meshv1alpha1.ProviderIstio)
	tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderIstio)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(9080)}, {Port: 9090}}}}
	scope := mesh.DefaultScope(meshv1alpha1.ProviderIstio)
	checked := map[string]int{}
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed>>1|1))
		rp := genResilience(rng)
		ts := genSplit(rng)
		objs, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: svc, Scope: scope})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		split, err := tt.TranslateTrafficSplit(ts)
		// The controllers compose only a VirtualService and only without
		// a field both set (that is a Conflict).
		if err != nil || ts.Spec.Output == meshv1alpha1.OutputGatewayAPI || len(mesh.ClashingRouteFields(&ts.Spec, &rp.Spec)) > 0 {
			split = nil
		}
		var composed []client.Object
		var cerr error
		if split != nil {
			composed, cerr = composer.ComposeRoute(split, rp)
		}
		for _, r := range resilienceRequests() {
			if mesh.HasRouteFields(&rp.Spec) {
				got, ok := IstioBehaviour(objs, r)
				want := ResilienceIntent(&rp.Spec, Route{"web": 100}, r)
				if !ok || !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d, own route, %+v:\n got %+v (ok %v)\nwant %+v\npolicy %+v", seed, r, got, ok, want, rp.Spec)
				}
				checked["own"]++
			}
			if split == nil || cerr != nil {
				checked["not composed"]++
				continue
			}
			got, ok := IstioBehaviour(composed, r)
			splitRoute := Routes(&ts.Spec, r)
			want := ResilienceIntent(&rp.Spec, splitRoute, r)
			if ts.Spec.Retries != nil && want.Attempts == 0 {
				want.Attempts, want.PerTry = ts.Spec.Retries.Attempts, 0
				if ts.Spec.Retries.PerTryTimeout != nil {
					want.PerTry = ts.Spec.Retries.PerTryTimeout.Duration
				}
			}
			if ts.Spec.Timeout != nil && want.Timeout == 0 {
				want.Timeout = ts.Spec.Timeout.Duration
			}
			if !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, composed, %+v:\n got %+v (ok %v)\nwant %+v\npolicy %+v\nsplit %+v", seed, r, got, ok, want, rp.Spec, ts.Spec)
			}
			checked["composed"]++
		}
		checkRateLimit(t, seed, rp, objs, checked)
	}
	for _, k := range []string{"own", "composed", "rate limit"} {
		if checked[k] == 0 {
			t.Errorf("no %s case checked: %v", k, checked)
		}
	}
	t.Logf("checked: %v", checked)
}

func checkRateLimit(t *testing.T, seed uint64, rp *meshv1alpha1.ResiliencePolicy, objs []client.Object, checked map[string]int) {
	t.Helper()
	got, ok := IstioRateLimit(objs)
	if rp.Spec.RateLimit == nil {
		if ok {
			t.Fatalf("seed %d: a rate limit nobody asked for: %+v", seed, got)
		}
		return
	}
	rl := rp.Spec.RateLimit.Local
	want := LocalRateLimit{Selector: map[string]string{"app": "web"}, Tokens: int64(rl.Requests), PerFill: int64(rl.Requests),
		Interval: strconv.FormatFloat(rl.Interval.Seconds(), 'f', -1, 64) + "s", Enabled: true, Enforced100: true}
	if rp.Spec.TargetRef.Port != nil {
		want.Port = 9080 // the container port Service port 8080 forwards to
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("seed %d: rate limit\n got %+v (ok %v)\nwant %+v", seed, got, ok, want)
	}
	if d, err := time.ParseDuration(got.Interval); err != nil || d != rl.Interval.Duration {
		t.Fatalf("seed %d: fill_interval %q is not %s", seed, got.Interval, rl.Interval.Duration)
	}
	checked["rate limit"]++
}
