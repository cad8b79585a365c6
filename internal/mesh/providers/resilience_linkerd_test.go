package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

// linkerdEnforces are the cases of resilienceCases Linkerd translates
// (every other case sets a field Linkerd refuses).
var linkerdEnforces = map[string]bool{"rp-timeout-request.linkerd": true, "rp-timeout-idle.linkerd": true}

// linkerdCases are the Linkerd-specific cases: what each enforced field
// becomes, and the refusals only the translation can decide.
var linkerdCases = []struct {
	name string
	spec meshv1alpha1.ResiliencePolicySpec
}{
	{"rp-l5d-failure-accrual", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](5), BaseEjectionTime: dur("30s")}
	})},
	{"rp-l5d-failure-accrual-long-penalty", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](3), BaseEjectionTime: dur("5m")}
	})},
	{"rp-l5d-retries-timeouts", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.TargetRef.Port = ptr[int32](8080)
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3, PerTryTimeout: dur("2s"),
			RetryOn: []meshv1alpha1.RetryOn{"5xx", "GatewayError", "Unavailable"}}}
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("10s"), Idle: dur("1m")}
	})},
	{"rp-l5d-all", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.OutlierDetection = &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](7)}
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 2}}
		s.Timeouts = &meshv1alpha1.Timeouts{Request: dur("1500ms")}
	})},
	{"rp-l5d-retry-connect-failure", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 2, RetryOn: []meshv1alpha1.RetryOn{"ConnectFailure"}}}
	})},
	{"rp-l5d-rate-limit", rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: metav1.Duration{Duration: 1e9}}}
	})},
}

// linkerdComposedSplit translates the weighted split of web with Linkerd,
// composes rp into its HTTPRoute, and translates rp knowing the split
// routes its target.
func linkerdComposedSplit(rp *meshv1alpha1.ResiliencePolicy) ([]client.Object, error) {
	reg := Registry()
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web-split", Namespace: "shop"}, Spec: tsSpec(nil)}
	tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderLinkerd)
	objs, err := tt.TranslateTrafficSplit(ts)
	if err != nil {
		return nil, err
	}
	composer, ok := reg.RouteComposer(meshv1alpha1.ProviderLinkerd)
	if !ok {
		return nil, errors.New("Linkerd is not a RouteComposer")
	}
	if objs, err = composer.ComposeRoute(objs, rp); err != nil {
		return nil, err
	}
	own, err := translateResilience(meshv1alpha1.ProviderLinkerd, rp, ts)
	if err != nil {
		return nil, err
	}
	return append(objs, own...), nil
}

func linkerdResilienceAll() []translation {
	var out []translation
	for _, tc := range linkerdCases {
		objs, err := translateResilience(meshv1alpha1.ProviderLinkerd, resiliencePolicy(tc.spec), nil)
		out = append(out, translation{golden: tc.name + ".linkerd", objs: objs, err: err})
	}
	out = append(out, linkerdRateLimitAll()...)
	objs, err := linkerdComposedSplit(resiliencePolicy(linkerdCases[3].spec))
	out = append(out, translation{golden: "composed-ts-retries-timeout.linkerd", objs: objs, err: err})
	return out
}

func TestLinkerdResilienceGolden(t *testing.T) {
	for _, tr := range linkerdResilienceAll() {
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

// TestLinkerdResilienceAnnotations pins what each enforced field becomes.
func TestLinkerdResilienceAnnotations(t *testing.T) {
	ann := func(tr translation) map[string]string {
		t.Helper()
		if tr.err != nil || len(tr.objs) != 1 || tr.objs[0].GetObjectKind().GroupVersionKind().Kind != "Service" {
			t.Fatalf("%s: want one Service, got %v %v", tr.golden, tr.objs, tr.err)
		}
		return tr.objs[0].GetAnnotations()
	}
	all := linkerdResilienceAll()
	want := []map[string]string{
		{"balancer.linkerd.io/failure-accrual": "consecutive", "balancer.linkerd.io/failure-accrual-consecutive-max-failures": "5",
			"balancer.linkerd.io/failure-accrual-consecutive-min-penalty": "30s"},
		{"balancer.linkerd.io/failure-accrual": "consecutive", "balancer.linkerd.io/failure-accrual-consecutive-max-failures": "3",
			"balancer.linkerd.io/failure-accrual-consecutive-min-penalty": "5m", "balancer.linkerd.io/failure-accrual-consecutive-max-penalty": "5m"},
		{"retry.linkerd.io/limit": "3", "retry.linkerd.io/http": "5xx,gateway-error", "retry.linkerd.io/grpc": "unavailable",
			"retry.linkerd.io/timeout": "2s", "timeout.linkerd.io/request": "10s", "timeout.linkerd.io/idle": "1m"},
	}
	for i, w := range want {
		if got := ann(all[i]); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: annotations %v, want %v", all[i].golden, got, w)
		}
	}
	// Composed: the split's route carries the retries and the timeout, the
	// Service only the failure accrual.
	composed := all[len(all)-1]
	if composed.err != nil || len(composed.objs) != 2 {
		t.Fatalf("composed: %v %v", composed.objs, composed.err)
	}
	route, svc := composed.objs[0].GetAnnotations(), composed.objs[1].GetAnnotations()
	if route["retry.linkerd.io/limit"] != "2" || route["retry.linkerd.io/http"] != "5xx" || route["timeout.linkerd.io/request"] != "1500ms" || len(route) != 3 {
		t.Errorf("composed route annotations: %v", route)
	}
	if svc["balancer.linkerd.io/failure-accrual-consecutive-max-failures"] != "7" || len(svc) != 2 {
		t.Errorf("composed Service annotations: %v", svc)
	}
}

// TestLinkerdResilienceRefusals: the refusals the translation decides
// (every field Linkerd lacks is refused by the report: the per-field
// goldens of resilienceCases) name the field, the value and the fix.
func TestLinkerdResilienceRefusals(t *testing.T) {
	tr, _ := Registry().ResilienceTranslator(meshv1alpha1.ProviderLinkerd)
	scope := mesh.DefaultScope(meshv1alpha1.ProviderLinkerd)
	scope.Namespace.Name = "shop"
	retries := resiliencePolicy(linkerdCases[2].spec)
	twoPorts := webService()
	twoPorts.Spec.Ports = append(twoPorts.Spec.Ports, corev1.ServicePort{Name: "admin", Port: 9090})
	headless := webService()
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	owned := webService()
	owned.Labels = map[string]string{"app.kubernetes.io/managed-by": "meshplane", "meshplane.io/owner": "Canary.shop.web"}
	old := scope
	old.Install.MeshInstall, old.Install.Version = "linkerd", "2.15.4"
	oldAccrual := old
	oldAccrual.Install.Version = "edge-23.2.1"
	cases := []struct {
		name   string
		rp     *meshv1alpha1.ResiliencePolicy
		svc    *corev1.Service
		scope  mesh.Scope
		reason string
		want   string
	}{
		{"one port of two", retries, twoPorts, scope, meshv1alpha1.InvalidSpecReason,
			"spec.targetRef.port 8080: Linkerd reads resilience annotations for every port of Service web, which has 2 ports"},
		{"headless", resiliencePolicy(linkerdCases[3].spec), headless, scope, meshv1alpha1.InvalidSpecReason,
			"Service web is headless (clusterIP None)"},
		{"a Meshplane output", retries, owned, scope, meshv1alpha1.InvalidSpecReason,
			"Service web is an output of Meshplane object Canary.shop.web"},
		{"Linkerd before 2.16", retries, webService(), old, meshv1alpha1.UnsupportedFeatureReason,
			"retries.attempts: needs Linkerd 2.16 (edge-24.8) or later (installed: 2.15.4)"},
		{"Linkerd before failure accrual", resiliencePolicy(linkerdCases[0].spec), webService(), oldAccrual, meshv1alpha1.UnsupportedFeatureReason,
			"outlierDetection.consecutive5xxErrors: needs Linkerd 2.13 (edge-23.3) or later (installed: edge-23.2.1)"},
		{"retry on connect failure", resiliencePolicy(linkerdCases[4].spec), webService(), scope, meshv1alpha1.UnsupportedFeatureReason,
			"spec.retries.retryOn: retry condition ConnectFailure"},
		{"rate limit without a Server", resiliencePolicy(linkerdCases[5].spec), webService(), scope, meshv1alpha1.UnsupportedFeatureReason,
			"spec.rateLimit.local: Linkerd limits rates inbound with an HTTPLocalRateLimitPolicy on a Server, and no Server in namespace shop selects exactly the pods of Service web (podSelector.matchLabels map[app:web]) on port 9080; " +
				"Meshplane does not create a Server (a new Server changes which traffic the port admits)"},
		{"rate limit before Linkerd 2.17", resiliencePolicy(linkerdCases[5].spec), webService(), old, meshv1alpha1.UnsupportedFeatureReason,
			"rateLimit.local: needs Linkerd 2.17 (edge-24.11) or later (installed: 2.15.4)"},
	}
	for _, tc := range cases {
		objs, err := tr.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: tc.rp, Service: tc.svc, Scope: tc.scope})
		term, ok := outcome.AsTerminal(err)
		if objs != nil || !ok || term.StalledReason() != tc.reason || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want %s containing %q", tc.name, objs, err, tc.reason, tc.want)
		}
	}
	// gRPC retry conditions cannot ride a split's HTTPRoute: the policy's
	// translation refuses them, and the split's route leaves the policy out.
	split := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web-split", Namespace: "shop"}, Spec: tsSpec(nil)}
	want := "spec.retries.retryOn: TrafficSplit web-split routes Service web with an HTTPRoute, which carries the retries, and Linkerd ignores retry.linkerd.io/grpc on an HTTPRoute"
	if _, err := linkerdComposedSplit(retries); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("composed gRPC retries: %v", err)
	}
	lt, _ := Registry().TrafficTranslator(meshv1alpha1.ProviderLinkerd)
	routeObjs, err := lt.TranslateTrafficSplit(split)
	if err != nil {
		t.Fatal(err)
	}
	composer, _ := Registry().RouteComposer(meshv1alpha1.ProviderLinkerd)
	if got, err := composer.ComposeRoute(routeObjs, retries); err != nil || len(got) != 1 || len(got[0].GetAnnotations()) != 0 {
		t.Errorf("the split's route composed a refused policy: %v %v", got, err)
	}
	if _, err := tr.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: retries, Service: webService(), Scope: scope, ComposedWith: split}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("policy with gRPC retries next to a split: %v", err)
	}
	// A policy with only fields a BreakGlass lifts writes nothing then.
	relaxed := resiliencePolicy(linkerdCases[0].spec)
	relaxed.Spec.OutlierDetection = nil
	if objs, err := tr.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: relaxed, Service: webService(), Scope: scope}); err != nil || objs != nil {
		t.Errorf("relaxed: %v %v", objs, err)
	}
}

// TestLinkerdResilienceOutputsAcceptedByRealCRDs applies every Linkerd
// output onto envtest with the real CRDs and strict field validation: the
// Service annotations onto an existing Service (a shared object is never
// created), the composed HTTPRoute as created.
func TestLinkerdResilienceOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	for i, tr := range linkerdResilienceAll() {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("resilience-l5d-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		svc := webService()
		svc.Namespace = ns
		if err := c.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			n++
			if err := ApplyStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
		live := &corev1.Service{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, live); err != nil {
			t.Fatal(err)
		}
		if len(live.Spec.Ports) != 1 || live.Spec.Ports[0].Port != 8080 || live.Spec.Selector["app"] != "web" {
			t.Errorf("%s: the Service's spec changed: %+v", tr.golden, live.Spec)
		}
	}
	if n < 5 {
		t.Fatalf("only %d outputs checked", n)
	}
}

// checkLinkerdResilience is the fuzz oracle of Linkerd: the translation
// refuses exactly when the report refuses a field, and otherwise writes
// one Service whose annotations carry exactly the policy's values.
func checkLinkerdResilience(t *testing.T, rp *meshv1alpha1.ResiliencePolicy, objs []map[string]any) {
	t.Helper()
	prov, _ := Registry().Get(meshv1alpha1.ProviderLinkerd)
	refuses := mesh.DecideResilience(prov.(mesh.ResilienceSupporter), mesh.DefaultScope(meshv1alpha1.ProviderLinkerd), &rp.Spec) != nil
	if len(mesh.ResilienceFieldsOf(&rp.Spec)) == 0 {
		return
	}
	if rp.Spec.RateLimit != nil && !refuses {
		// The translation decides the local rate limit by the Servers
		// (none here: refused) and its exactness.
		return
	}
	if refuses != (objs == nil) {
		t.Fatalf("Linkerd: report refuses %v, translation returned %d objects", refuses, len(objs))
	}
	if refuses {
		return
	}
	if len(objs) != 1 || objs[0]["kind"] != "Service" {
		t.Fatalf("Linkerd: want the target Service, got %v", objs)
	}
	if _, ok := objs[0]["spec"]; ok {
		t.Fatalf("Linkerd: the Service output sets its spec: %v", objs[0])
	}
	meta := objs[0]["metadata"].(map[string]any)
	ann := map[string]string{}
	for k, v := range meta["annotations"].(map[string]any) {
		ann[k] = v.(string)
	}
	want := map[string]string{}
	if od := rp.Spec.OutlierDetection; od != nil && od.Consecutive5xxErrors != nil {
		want["balancer.linkerd.io/failure-accrual"] = "consecutive"
		want["balancer.linkerd.io/failure-accrual-consecutive-max-failures"] = fmt.Sprint(*od.Consecutive5xxErrors)
	}
	if r := rp.Spec.Retries; r != nil {
		want["retry.linkerd.io/limit"] = fmt.Sprint(r.Attempts)
		want["retry.linkerd.io/http"] = "5xx"
		if r.PerTryTimeout != nil {
			want["retry.linkerd.io/timeout"] = r.PerTryTimeout.Duration.String()
		}
	}
	if to := rp.Spec.Timeouts; to != nil && to.Request != nil {
		want["timeout.linkerd.io/request"] = to.Request.Duration.String()
	}
	for k, w := range want {
		got := ann[k]
		if strings.HasPrefix(k, "timeout.") || strings.HasSuffix(k, "/timeout") {
			// Durations are written in Linkerd's units (1h, 20s): compare
			// as durations.
			g, err1 := time.ParseDuration(got)
			x, err2 := time.ParseDuration(w)
			if err1 != nil || err2 != nil || g != x {
				t.Fatalf("Linkerd: %s = %q, want %q", k, got, w)
			}
			continue
		}
		if got != w {
			t.Fatalf("Linkerd: %s = %q, want %q", k, got, w)
		}
	}
	if len(ann) != len(want) {
		t.Fatalf("Linkerd: annotations %v, want exactly %v", ann, want)
	}
}
