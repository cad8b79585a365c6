package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

func rpSpec(mod func(s *meshv1alpha1.ResiliencePolicySpec)) meshv1alpha1.ResiliencePolicySpec {
	s := meshv1alpha1.ResiliencePolicySpec{TargetRef: meshv1alpha1.ServiceReference{Name: "web"}}
	mod(&s)
	return s
}

// resilienceCases cover every field of a ResiliencePolicy (ResilienceFields),
// one golden file per case and mesh, refusals included.
var resilienceCases = []struct {
	name string
	spec meshv1alpha1.ResiliencePolicySpec
}{
	{"rp-connection-pool", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxConnections: ptr[int32](100), MaxPendingRequests: ptr[int32](10), MaxRequests: ptr[int32](200),
			MaxRequestsPerConnection: ptr[int32](5), ConnectTimeout: dur("2s"), IdleTimeout: dur("5m")}
	})},
	{"rp-outlier-consecutive", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](5), ConsecutiveGatewayErrors: ptr[int32](3),
			Interval: dur("10s"), BaseEjectionTime: dur("30s"), MaxEjectionPercent: ptr[int32](50)}
	})},
	{"rp-outlier-success-rate", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{SuccessRate: &meshv1alpha1.SuccessRateEjection{MinimumHosts: 5, RequestVolume: 100, StdevFactor: 1900}}
	})},
	{"rp-lb-round-robin-warmup", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRoundRobin, Warmup: dur("1m")}
	})},
	{"rp-lb-least-request", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}
	})},
	{"rp-lb-random", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRandom}
	})},
	{"rp-lb-hash-header", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerConsistentHash, ConsistentHash: &meshv1alpha1.ConsistentHash{Header: "X-User"}}
	})},
	{"rp-lb-hash-cookie", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerConsistentHash,
			ConsistentHash: &meshv1alpha1.ConsistentHash{Cookie: &meshv1alpha1.HashCookie{Name: "session", TTL: dur("1h")}}}
	})},
	{"rp-lb-hash-source-ip", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerConsistentHash, ConsistentHash: &meshv1alpha1.ConsistentHash{SourceIP: true}}
	})},
	{"rp-retries-budget", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3, PerTryTimeout: dur("1s"), RetryOn: []meshv1alpha1.RetryOn{"5xx", "ConnectFailure"}},
			Budget: &meshv1alpha1.RetryBudget{Percent: 20, MinRetryConcurrency: ptr[int32](3)}}
	})},
	{"rp-timeout-request", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("15s")}
	})},
	{"rp-timeout-idle", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Timeouts = &meshv1alpha1.Timeouts{Idle: dur("1m")}
	})},
	{"rp-fault-delay-abort", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.FaultInjection = &meshv1alpha1.FaultInjection{Delay: &meshv1alpha1.FaultDelay{FixedDelay: metav1.Duration{Duration: 5e8}, Percent: 10},
			Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 1}}
	})},
	{"rp-fault-headers-port", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.TargetRef.Port = ptr[int32](8080)
		s.FaultInjection = &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 500, Percent: 100},
			Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "X-Chaos", Type: meshv1alpha1.HeaderMatchExact, Value: "on"}}}
	})},
	{"rp-rate-limit", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.TargetRef.Port = ptr[int32](8080)
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: metav1.Duration{Duration: 1e9}, Burst: ptr[int32](200)}}
	})},
	{"rp-rate-limit-path", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.TargetRef.Port = ptr[int32](8080)
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: 6e10}, PathPrefix: "/api"}}
	})},
	{"rp-rate-limit-global", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: metav1.Duration{Duration: 1e9}},
			Global: &meshv1alpha1.GlobalRateLimit{Service: meshv1alpha1.RateLimitService{Name: "ratelimit", Namespace: "infra", Port: 8081}, Domain: "shop",
				Descriptors: []meshv1alpha1.RateLimitDescriptor{{Key: "service", Value: "web"}, {Key: "PATH", Path: true}, {Key: "user", Header: "X-User"}},
				FailClosed:  true, Timeout: dur("50ms")}}
	})},
	{"rp-rate-limit-global-path", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 5, Interval: metav1.Duration{Duration: 1e9}, Burst: ptr[int32](10), PathPrefix: "/login"},
			Global: &meshv1alpha1.GlobalRateLimit{Service: meshv1alpha1.RateLimitService{Name: "ratelimit", Port: 8081}, Domain: "shop",
				Descriptors: []meshv1alpha1.RateLimitDescriptor{{Key: "PATH", Path: true}}}}
	})},
	{"rp-port-pool-outlier", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.TargetRef.Port = ptr[int32](8080)
		s.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxConnections: ptr[int32](10)}
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](2)}
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 2}, Budget: &meshv1alpha1.RetryBudget{Percent: 25}}
	})},
}

// webService is the target of the cases: selector app=web, port 8080 to
// container port 9080.
func webService() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(9080)}}}}
}

// translateResilience translates one policy for provider p in its
// default scope (a sidecar / proxy namespace of a default install): the
// translator's answer, or the refusal naming every field when the mesh
// has no translator or refuses fields.
func translateResilience(p meshv1alpha1.Provider, rp *meshv1alpha1.ResiliencePolicy, ts *meshv1alpha1.TrafficSplit) ([]client.Object, error) {
	reg := Registry()
	scope := mesh.DefaultScope(p)
	scope.Namespace.Name = "shop"
	t, err := reg.ResilienceTranslator(p)
	if err != nil {
		prov, _ := reg.Get(p)
		if derr := mesh.DecideResilience(prov.(mesh.ResilienceSupporter), scope, &rp.Spec); derr != nil {
			return nil, derr
		}
		return nil, err
	}
	return t.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: webService(), Scope: scope, ComposedWith: ts})
}

func resiliencePolicy(spec meshv1alpha1.ResiliencePolicySpec) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
}

// composedSplit translates the weighted split of web with Istio and
// composes rp into its VirtualService, and translates rp knowing the
// split routes its target.
func composedSplit(rp *meshv1alpha1.ResiliencePolicy) ([]client.Object, error) {
	reg := Registry()
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web-split", Namespace: "shop"}, Spec: tsSpec(nil)}
	tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderIstio)
	objs, err := tt.TranslateTrafficSplit(ts)
	if err != nil {
		return nil, err
	}
	composer, _ := reg.RouteComposer(meshv1alpha1.ProviderIstio)
	if objs, err = composer.ComposeRoute(objs, rp); err != nil {
		return nil, err
	}
	own, err := translateResilience(meshv1alpha1.ProviderIstio, rp, ts)
	if err != nil {
		return nil, err
	}
	return append(objs, own...), nil
}

func resilienceAll() []translation {
	var out []translation
	for _, p := range meshv1alpha1.Providers {
		for _, tc := range resilienceCases {
			objs, err := translateResilience(p, resiliencePolicy(tc.spec), nil)
			out = append(out, translation{golden: tc.name + "." + strings.ToLower(string(p)), objs: objs, err: err})
		}
	}
	for _, name := range []string{"rp-fault-delay-abort", "rp-fault-headers-port", "rp-retries-budget"} {
		for _, tc := range resilienceCases {
			if tc.name == name {
				objs, err := composedSplit(resiliencePolicy(tc.spec))
				out = append(out, translation{golden: "composed-ts-" + strings.TrimPrefix(name, "rp-") + ".istio", objs: objs, err: err})
			}
		}
	}
	return append(out, ciliumResilience()...)
}

func TestResilienceGolden(t *testing.T) {
	for _, tr := range resilienceAll() {
		t.Run(tr.golden, func(t *testing.T) {
			got := render(t, tr)
			path := filepath.Join("testdata", tr.golden+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestResilienceRefusalsNameFieldAndMesh pins which cases Istio and Cilium
// refuse, which Linkerd enforces (linkerdEnforces), and that the other
// cases are refused naming each field and the mesh.
func TestResilienceRefusalsNameFieldAndMesh(t *testing.T) {
	istioRefuses := map[string]string{
		"rp-outlier-success-rate.istio": "outlierDetection.successRate",
		"rp-timeout-idle.istio":         "timeouts.idle",
	}
	for _, tr := range resilienceAll() {
		meshName := tr.golden[strings.LastIndex(tr.golden, ".")+1:]
		field, refused := istioRefuses[tr.golden]
		if meshName == "cilium" {
			field, refused = ciliumRefuses[tr.golden]
		} else if meshName != "istio" && !linkerdEnforces[tr.golden] {
			refused = true
		}
		if !refused {
			if tr.err != nil {
				t.Errorf("%s: unexpected error %v", tr.golden, tr.err)
			}
			continue
		}
		var uf *mesh.UnsupportedFeatureError
		if !errors.As(tr.err, &uf) || !strings.Contains(strings.ToLower(tr.err.Error()), meshName) || (field != "" && !strings.Contains(tr.err.Error(), field)) {
			t.Errorf("%s: want UnsupportedFeatureError naming %q and %s, got %v", tr.golden, field, meshName, tr.err)
		}
		if term, ok := outcome.AsTerminal(tr.err); !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason {
			t.Errorf("%s: not terminal UnsupportedFeature: %v", tr.golden, tr.err)
		}
	}
}

// TestResilienceScopes: the install and the namespace decide: an ambient
// namespace without a waypoint refuses naming the waypoint to create; an
// old Istio refuses the retry budget; Cilium without Envoy refuses every
// field naming spec.cilium.envoy.
func TestResilienceScopes(t *testing.T) {
	reg := Registry()
	rp := resiliencePolicy(resilienceCases[1].spec) // outlier detection
	it, _ := reg.ResilienceTranslator(meshv1alpha1.ProviderIstio)
	ambient := mesh.Scope{Install: mesh.InstallFacts{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileAmbient},
		Namespace: mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient}}
	_, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: webService(), Scope: ambient})
	if err == nil || !strings.Contains(err.Error(), "outlierDetection.consecutive5xxErrors: namespace shop is ambient and no waypoint serves it") || !strings.Contains(err.Error(), "enable a waypoint for namespace shop") {
		t.Fatalf("ambient without waypoint: %v", err)
	}
	ambient.Namespace.Waypoint = "waypoint"
	ambient.Namespace.Waypoints = map[string]mesh.WaypointFacts{"waypoint": {For: "service", Programmed: true}}
	objs, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: webService(), Scope: ambient})
	if err != nil || len(objs) != 1 || objs[0].GetObjectKind().GroupVersionKind().Kind != "DestinationRule" {
		t.Fatalf("ambient with waypoint: %v %v", objs, err)
	}
	withFault := resiliencePolicy(resilienceCases[12].spec)
	if _, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: withFault, Service: webService(), Scope: ambient}); err == nil ||
		!strings.Contains(err.Error(), "faultInjection.delay") {
		t.Fatalf("ambient fault: %v", err)
	}
	old := mesh.Scope{Install: mesh.InstallFacts{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Version: "1.26.3"}, Namespace: mesh.NamespaceFacts{Name: "shop", Mode: mesh.Sidecar}}
	budget := resiliencePolicy(resilienceCases[9].spec)
	if _, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: budget, Service: webService(), Scope: old}); err == nil ||
		!strings.Contains(err.Error(), "retries.budget: DestinationRule retryBudget needs Istio 1.27 or later; installed 1.26.3") {
		t.Fatalf("old Istio: %v", err)
	}
	old.Install.Version = "1.28.1"
	if _, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: budget, Service: webService(), Scope: old}); err != nil {
		t.Fatalf("Istio 1.28: %v", err)
	}
	noEnvoy := mesh.Scope{Install: mesh.InstallFacts{Provider: meshv1alpha1.ProviderCilium, MeshInstall: "cilium"}, Namespace: mesh.NamespaceFacts{Name: "shop", Mode: mesh.CiliumNode}}
	report := reg.ResilienceReport(noEnvoy, &rp.Spec)
	for _, fs := range report {
		if fs.Provider == meshv1alpha1.ProviderCilium && !strings.Contains(fs.Detail, "set spec.cilium.envoy on the MeshInstall") {
			t.Errorf("Cilium without Envoy: %+v", fs)
		}
	}
	if len(report) != 5*3 {
		t.Errorf("report: %d entries, want 15", len(report))
	}
}

// TestResilienceOutputsAcceptedByRealCRDs creates every translated object
// on envtest with the real CRDs and strict field validation.
func TestResilienceOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	for i, tr := range resilienceAll() {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("resilience-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		// The target exists: annotations of it are applied as fields of
		// a shared object.
		svc := twoPortService()
		svc.Namespace = ns
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			n++
			if err := ApplyStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d outputs checked", n)
	}
}

// TestResilienceOutputKindsCoverTranslations: every kind a translation
// returns is declared (so the controller watches it).
func TestResilienceOutputKindsCoverTranslations(t *testing.T) {
	declared := map[string]bool{}
	for _, o := range Registry().ResilienceOutputKinds() {
		declared[o.GetObjectKind().GroupVersionKind().String()] = true
	}
	for _, tr := range resilienceAll() {
		for _, o := range tr.objs {
			// A Service is the shared target (its own watch), never owned.
			if gvk := o.GetObjectKind().GroupVersionKind(); !declared[gvk.String()] && gvk.Kind != "VirtualService" && gvk.Kind != "Service" {
				t.Errorf("%s: %s not in ResilienceOutputKinds", tr.golden, gvk)
			}
		}
	}
	if !reflect.DeepEqual(len(declared), 6) {
		t.Errorf("declared kinds: %v", declared)
	}
}

// TestResilienceAmbientServiceWaypoint: a namespace with a waypoint that
// opts the target Service out is refused naming the Service.
func TestResilienceAmbientServiceWaypoint(t *testing.T) {
	it, _ := Registry().ResilienceTranslator(meshv1alpha1.ProviderIstio)
	scope := mesh.Scope{Install: mesh.InstallFacts{Provider: meshv1alpha1.ProviderIstio},
		Namespace: mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient, Waypoint: "waypoint", WaypointFor: map[string]string{"web": "none"},
			Waypoints: map[string]mesh.WaypointFacts{"waypoint": {For: "service", Programmed: true}}}}
	_, err := it.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: resiliencePolicy(resilienceCases[1].spec), Service: webService(), Scope: scope})
	if err == nil || !strings.Contains(err.Error(), "no waypoint serves Service web") {
		t.Fatalf("Service opted out of the waypoint: %v", err)
	}
}
