package providers

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/schema"
)

var (
	schemaOnce sync.Once
	schemas    *schema.Validator
	schemaErr  error
)

// realSchemas loads Meshplane's CRDs and the real third-party CRDs
// (standard Gateway API channel) for in-process validation.
func realSchemas(t testing.TB) *schema.Validator {
	t.Helper()
	schemaOnce.Do(func() {
		dir, err := cluster.CRDDir()
		if err != nil {
			schemaErr = err
			return
		}
		root, err := cluster.RepoRoot()
		if err != nil {
			schemaErr = err
			return
		}
		schemas, schemaErr = schema.Load(filepath.Join(root, cluster.MeshplaneCRDPath), filepath.Join(dir, "gateway-api", "standard"),
			filepath.Join(dir, "istio"), filepath.Join(dir, "cilium"), filepath.Join(dir, "linkerd"))
	})
	if schemaErr != nil {
		t.Skipf("CRDs not available (make test-crds): %v", schemaErr)
	}
	return schemas
}

// gen turns fuzz bytes into choices.
type gen struct{ b []byte }

func (g *gen) intn(n int) int {
	if len(g.b) == 0 || n <= 1 {
		return 0
	}
	v := int(g.b[0]) % n
	g.b = g.b[1:]
	return v
}

func pick[T any](g *gen, options ...T) T { return options[g.intn(len(options))] }

func (g *gen) backends() []meshv1alpha1.WeightedBackend {
	names := []string{"web-v1", "web-v2", "web-v3"}
	n := 1 + g.intn(3)
	out := make([]meshv1alpha1.WeightedBackend, 0, n)
	left := int32(100)
	for i := range n {
		w := left
		if i < n-1 {
			w = int32(g.intn(int(left) + 1))
		}
		left -= w
		b := meshv1alpha1.WeightedBackend{Name: names[i], Weight: w}
		if g.intn(4) == 0 {
			b.Port = ptr(pick(g, int32(8080), 9090, 1))
		}
		out = append(out, b)
	}
	if g.intn(8) == 0 { // sometimes invalid: the schema must reject it
		out[0].Weight++
	}
	return out
}

func (g *gen) match() meshv1alpha1.HTTPMatch {
	var m meshv1alpha1.HTTPMatch
	for range g.intn(3) {
		m.Headers = append(m.Headers, meshv1alpha1.HTTPHeaderMatch{
			Name:  pick(g, "x-user", "X-Canary", "cookie", "X-User"),
			Type:  pick(g, meshv1alpha1.HeaderMatchExact, meshv1alpha1.HeaderMatchPrefix, meshv1alpha1.HeaderMatchRegularExpression, ""),
			Value: pick(g, "alice", "beta.", "^(a|b)$", "a*b", "(unclosed", "v1", "a\r\nb", "(?!x)"),
		})
	}
	if g.intn(2) == 0 {
		m.Path = &meshv1alpha1.HTTPPathMatch{Type: pick(g, meshv1alpha1.PathMatchExact, meshv1alpha1.PathMatchPathPrefix, ""),
			Value: pick(g, "/", "/api", "/api/v1", "/api/", "/a//b", "/x%2fy", "/./a", "/a b", "/ok-path_1~", "/a/../b", "/a/..")}
	}
	if g.intn(2) == 0 || (m.Path == nil && len(m.Headers) == 0) {
		m.Method = pick[meshv1alpha1.HTTPMethod](g, "GET", "POST", "DELETE")
	}
	return m
}

func (g *gen) trafficSplit() *meshv1alpha1.TrafficSplit {
	s := meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web", Port: ptr(int32(8080))},
		Output: pick(g, meshv1alpha1.TrafficOutput(""), meshv1alpha1.OutputNative, meshv1alpha1.OutputGatewayAPI), Backends: g.backends()}
	for i := range g.intn(4) {
		r := meshv1alpha1.TrafficRule{Backends: g.backends()}
		if g.intn(2) == 0 {
			r.Name = pick(g, fmt.Sprintf("rule-%d", i), "default", "canary")
		}
		for range 1 + g.intn(2) {
			r.Matches = append(r.Matches, g.match())
		}
		s.Rules = append(s.Rules, r)
	}
	if g.intn(3) == 0 {
		s.Mirror = &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "shadow"}, Percent: ptr(pick(g, int32(0), 1, 50, 100))}
	}
	durations := []time.Duration{time.Millisecond, 1500 * time.Millisecond, time.Hour, 90 * time.Second, 1}
	if g.intn(3) == 0 {
		s.Timeout = &metav1.Duration{Duration: pick(g, durations...)}
	}
	if g.intn(3) == 0 {
		r := &meshv1alpha1.RetryPolicy{Attempts: int32(1 + g.intn(10))}
		if g.intn(2) == 0 {
			r.PerTryTimeout = &metav1.Duration{Duration: pick(g, durations...)}
		}
		for _, c := range []meshv1alpha1.RetryOn{"5xx", "GatewayError", "Reset", "Unavailable", "Retriable4xx"} {
			if g.intn(3) == 0 {
				r.RetryOn = append(r.RetryOn, c)
			}
		}
		s.Retries = r
	}
	return &meshv1alpha1.TrafficSplit{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "TrafficSplit"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: s}
}

func (g *gen) policy() *meshv1alpha1.ZeroTrustPolicy {
	s := meshv1alpha1.ZeroTrustPolicySpec{DefaultAction: pick(g, meshv1alpha1.ActionDeny, meshv1alpha1.ActionAllow)}
	if g.intn(2) == 0 {
		s.MTLS = &meshv1alpha1.MTLSSettings{Mode: pick(g, meshv1alpha1.MTLSStrict, meshv1alpha1.MTLSPermissive)}
	}
	if g.intn(3) == 0 {
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		if g.intn(2) == 0 {
			s.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}
		}
	}
	for i := range g.intn(4) {
		r := meshv1alpha1.AllowRule{}
		if g.intn(2) == 0 {
			r.Name = pick(g, fmt.Sprintf("r%d", i), "r0", "r1", "api")
		}
		for range g.intn(3) {
			var src meshv1alpha1.TrafficSource
			if g.intn(2) == 0 {
				src.ServiceAccounts = []string{pick(g, "frontend", "edge/gateway", "a.b")}
				if g.intn(4) == 0 { // over Istio's 16 per source
					for k := range 16 + g.intn(17) {
						src.ServiceAccounts = append(src.ServiceAccounts, fmt.Sprintf("sa-%d", k))
					}
				}
			}
			if g.intn(2) == 0 || len(src.ServiceAccounts) == 0 {
				src.Namespaces = []string{pick(g, "ops", "monitoring")}
			}
			r.From = append(r.From, src)
		}
		for range g.intn(3) {
			var d meshv1alpha1.TrafficDestination
			if g.intn(3) > 0 {
				d.Ports = []int32{pick(g, int32(8080), 9090, 443)}
			}
			if g.intn(2) == 0 {
				d.Methods = []meshv1alpha1.HTTPMethod{pick[meshv1alpha1.HTTPMethod](g, "GET", "PUT")}
			}
			if g.intn(2) == 0 || (len(d.Ports) == 0 && len(d.Methods) == 0) {
				d.Paths = []string{pick(g, "/api/*", "/healthz", "/a//b", "/*", "/a/../b", "/a*b")}
			}
			r.To = append(r.To, d)
		}
		s.Rules = append(s.Rules, r)
	}
	return &meshv1alpha1.ZeroTrustPolicy{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "ZeroTrustPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: s}
}

// accepted reports whether Meshplane's CRD (OpenAPI + CEL) accepts obj.
func accepted(t *testing.T, v *schema.Validator, obj client.Object) bool {
	u, err := apply.ToUnstructured(obj, scheme.New())
	if err != nil {
		t.Fatal(err)
	}
	return v.Validate(u.Object) == nil
}

// checkOutputs asserts determinism, nothing partial, and that the real
// schemas accept every output.
func checkOutputs(t *testing.T, v *schema.Validator, what string, translate func() ([]client.Object, error)) []map[string]any {
	objs, err := translate()
	again, err2 := translate()
	if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("%s: errors differ between runs: %v / %v", what, err, err2)
	}
	if err != nil {
		if len(objs) > 0 {
			t.Fatalf("%s: error with partial output: %v", what, err)
		}
		if !outcome.IsTerminal(err) {
			t.Fatalf("%s: non-terminal translation error: %v", what, err)
		}
		return nil
	}
	names := map[string]bool{}
	var out []map[string]any
	for i, o := range objs {
		key := o.GetObjectKind().GroupVersionKind().String() + " " + o.GetNamespace() + "/" + o.GetName()
		if names[key] {
			t.Fatalf("%s: two outputs are %s (one would replace the other)", what, key)
		}
		names[key] = true
		u, err := apply.ToUnstructured(o, scheme.New())
		if err != nil {
			t.Fatal(err)
		}
		u2, _ := apply.ToUnstructured(again[i], scheme.New())
		if !reflect.DeepEqual(u.Object, u2.Object) {
			t.Fatalf("%s: output %d differs between runs", what, i)
		}
		// Core kinds (a shared Namespace or Service) have no CRD.
		if u.GetAPIVersion() != "v1" {
			if err := v.Validate(u.Object); err != nil {
				b, _ := json.Marshal(u.Object)
				t.Fatalf("%s: %s %s refused by its CRD: %v\n%s", what, u.GetKind(), u.GetName(), err, b)
			}
		}
		out = append(out, u.Object)
	}
	return out
}

// weightsOf lists "name=weight" per rule of an HTTPRoute or VirtualService.
func weightsOf(obj map[string]any) [][]string {
	var out [][]string
	spec, _ := obj["spec"].(map[string]any)
	switch obj["kind"] {
	case "HTTPRoute":
		rules, _ := spec["rules"].([]any)
		for _, r := range rules {
			var ws []string
			refs, _ := r.(map[string]any)["backendRefs"].([]any)
			for _, b := range refs {
				bm := b.(map[string]any)
				ws = append(ws, fmt.Sprintf("%v=%v", bm["name"], bm["weight"]))
			}
			out = append(out, ws)
		}
	case "VirtualService":
		routes, _ := spec["http"].([]any)
		for _, r := range routes {
			var ws []string
			dests, _ := r.(map[string]any)["route"].([]any)
			for _, d := range dests {
				dm := d.(map[string]any)
				w, ok := dm["weight"]
				if !ok {
					w = float64(0) // proto JSON omits a zero weight
				}
				ws = append(ws, fmt.Sprintf("%v=%v", dm["destination"].(map[string]any)["host"], w))
			}
			out = append(out, ws)
		}
	}
	return out
}

func expectedWeights(s *meshv1alpha1.TrafficSplitSpec) [][]string {
	line := func(bs []meshv1alpha1.WeightedBackend) []string {
		var ws []string
		for _, b := range bs {
			ws = append(ws, fmt.Sprintf("%s=%d", b.Name, b.Weight))
		}
		return ws
	}
	var out [][]string
	for _, r := range s.Rules {
		out = append(out, line(r.Backends))
	}
	return append(out, line(s.Backends))
}

func FuzzTrafficSplitTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {2, 0, 50, 1, 1, 0, 2, 1, 1, 3, 0, 0, 2, 1}, []byte("traffic-split-seed-with-rules")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		g := &gen{b: data}
		ts := g.trafficSplit()
		if !accepted(t, v, ts) {
			return
		}
		reg := Registry()
		for _, p := range meshv1alpha1.Providers {
			in := ts.DeepCopy()
			if p != meshv1alpha1.ProviderIstio && in.Spec.Output == meshv1alpha1.OutputNative {
				continue // CEL refuses Native with another provider
			}
			tr, _ := reg.TrafficTranslator(p)
			objs := checkOutputs(t, v, "TrafficSplit on "+string(p), func() ([]client.Object, error) { return tr.TranslateTrafficSplit(in.DeepCopy()) })
			if objs == nil {
				continue
			}
			want := expectedWeights(&ts.Spec)
			if got := weightsOf(objs[0]); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: weights not preserved\n got %v\nwant %v", p, got, want)
			}
			if got, want := headerCounts(objs[0]), expectedHeaderCounts(&in.Spec, objs[0]["kind"] == "VirtualService"); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: header conditions not all represented\n got %v\nwant %v", p, got, want)
			}
		}
	})
}

func FuzzZeroTrustPolicyTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {0, 1, 0, 1, 2, 1, 1, 0, 0, 1, 1, 0}, {1, 0, 2, 0, 3, 1, 1, 2, 2, 0, 1, 1, 1, 0}, []byte("zero-trust-seed-with-rules")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		g := &gen{b: data}
		pol := g.policy()
		if !accepted(t, v, pol) {
			return
		}
		reg := Registry()
		for _, p := range meshv1alpha1.Providers {
			tr, _ := reg.PolicyTranslator(p)
			objs := checkOutputs(t, v, "ZeroTrustPolicy on "+string(p), func() ([]client.Object, error) { return tr.TranslateZeroTrustPolicy(pol.DeepCopy()) })
			if objs != nil {
				checkRulesRepresented(t, p, pol, objs)
			}
		}
	})
}

// TestRealSchemasRefuseInvalid shows the in-process validator is not
// vacuous: the real CRDs refuse what kube-apiserver refuses.
func TestRealSchemasRefuseInvalid(t *testing.T) {
	v := realSchemas(t)
	route := map[string]any{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "r", "namespace": "ns"},
		"spec": map[string]any{"rules": []any{map[string]any{"matches": []any{
			map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/a//b"}}}}}}}
	if err := v.Validate(route); err == nil {
		t.Fatal("HTTPRoute path /a//b accepted; Gateway API's CEL rule refuses it")
	}
	ts := &meshv1alpha1.TrafficSplit{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "TrafficSplit"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "a", Weight: 60}, {Name: "b", Weight: 60}}}}
	if accepted(t, v, ts) {
		t.Fatal("TrafficSplit with weights 60+60 accepted; its CEL rule refuses it")
	}
	ts.Spec.Backends[1].Weight = 40
	if !accepted(t, v, ts) {
		t.Fatal("valid TrafficSplit refused")
	}
}

// headerCounts lists, per rule of an HTTPRoute or VirtualService and per
// match, how many header conditions the output has.
func headerCounts(obj map[string]any) [][]int {
	var out [][]int
	spec, _ := obj["spec"].(map[string]any)
	rules, _ := spec["rules"].([]any)
	key := "matches"
	if obj["kind"] == "VirtualService" {
		rules, _ = spec["http"].([]any)
		key = "match"
	}
	for _, r := range rules {
		var counts []int
		ms, _ := r.(map[string]any)[key].([]any)
		for _, m := range ms {
			switch h := m.(map[string]any)["headers"].(type) {
			case []any:
				counts = append(counts, len(h))
			case map[string]any:
				counts = append(counts, len(h))
			default:
				counts = append(counts, 0)
			}
		}
		out = append(out, counts)
	}
	return out
}

// expectedHeaderCounts is headerCounts of a faithful translation: every
// header condition of every match, in every rule (a VirtualService repeats
// a match whose PathPrefix has no trailing / as an exact and a prefix
// match).
func expectedHeaderCounts(s *meshv1alpha1.TrafficSplitSpec, virtualService bool) [][]int {
	var out [][]int
	for _, r := range s.Rules {
		var counts []int
		for _, m := range r.Matches {
			counts = append(counts, len(m.Headers))
			if virtualService && m.Path != nil && m.Path.Type != meshv1alpha1.PathMatchExact && !strings.HasSuffix(m.Path.Value, "/") {
				counts = append(counts, len(m.Headers))
			}
		}
		out = append(out, counts)
	}
	return append(out, nil)
}

// checkRulesRepresented: every rule of a policy with defaultAction Deny
// is in the output (an AuthorizationPolicy rule, a CiliumNetworkPolicy
// ingress rule, a Linkerd authentication named after the rule), so a
// translation never drops one silently.
func checkRulesRepresented(t *testing.T, p meshv1alpha1.Provider, pol *meshv1alpha1.ZeroTrustPolicy, objs []map[string]any) {
	t.Helper()
	if pol.Spec.DefaultAction == meshv1alpha1.ActionAllow || len(pol.Spec.Rules) == 0 {
		return
	}
	count := func(kind, field string) int {
		for _, o := range objs {
			if o["kind"] == kind {
				rules, _ := o["spec"].(map[string]any)[field].([]any)
				return len(rules)
			}
		}
		return -1
	}
	switch p {
	case meshv1alpha1.ProviderIstio:
		if got := count("AuthorizationPolicy", "rules"); got != len(pol.Spec.Rules) {
			t.Fatalf("Istio: %d AuthorizationPolicy rules for %d policy rules", got, len(pol.Spec.Rules))
		}
	case meshv1alpha1.ProviderCilium:
		if got := count("CiliumNetworkPolicy", "ingress"); got != len(pol.Spec.Rules) {
			t.Fatalf("Cilium: %d ingress rules for %d policy rules", got, len(pol.Spec.Rules))
		}
	case meshv1alpha1.ProviderLinkerd:
		for i, r := range pol.Spec.Rules {
			name := pol.Name + "-" + mesh.PolicyRuleName(i, r)
			if !slices.ContainsFunc(objs, func(o map[string]any) bool {
				md, _ := o["metadata"].(map[string]any)
				return md["name"] == name && strings.HasSuffix(o["kind"].(string), "Authentication")
			}) {
				t.Fatalf("Linkerd: no authentication %s for spec.rules[%d]", name, i)
			}
		}
	}
}
