package oracle

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/outcome"
)

// specs is how many random specs of each kind TestOracle checks; make test
// runs the default (a few seconds), make fuzz runs FuzzOracle for longer.
var specs = flag.Int("oracle.specs", 300, "random specs of each kind the oracle property test checks")

const ns = "shop"

// target is one mesh, as installed, with one namespace data plane.
type target struct {
	name    string
	scope   mesh.Scope
	cilium  CiliumInstall
	ztunnel bool
}

func install(p meshv1alpha1.Provider, mi *meshv1alpha1.MeshInstall, mode mesh.DataPlaneMode) mesh.Scope {
	return mesh.Scope{Install: mesh.InstallFactsOf(p, mi, true), Namespace: mesh.NamespaceFacts{Name: ns, Mode: mode}}
}

func ciliumMI(mutual, enc, envoy bool) *meshv1alpha1.MeshInstall {
	c := &meshv1alpha1.CiliumInstallSpec{MutualAuth: mutual, Envoy: &envoy}
	if enc {
		c.Encryption = &meshv1alpha1.CiliumEncryption{Type: meshv1alpha1.CiliumEncryptionWireGuard}
	}
	return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Cilium: c}}
}

func istioMI(profile meshv1alpha1.Profile) *meshv1alpha1.MeshInstall {
	return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.30.2", Profile: profile}}
}

// targets are every mesh and data-plane mode, with installs that enable
// and that lack the optional features.
var targets = []target{
	{name: "istio/sidecar", scope: install(meshv1alpha1.ProviderIstio, istioMI(meshv1alpha1.ProfileSidecar), mesh.Sidecar)},
	{name: "istio/ambient-no-waypoint", scope: install(meshv1alpha1.ProviderIstio, istioMI(meshv1alpha1.ProfileAmbient), mesh.Ambient), ztunnel: true},
	{name: "linkerd", scope: install(meshv1alpha1.ProviderLinkerd, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1"}}, mesh.LinkerdProxy)},
	{name: "cilium/full", scope: install(meshv1alpha1.ProviderCilium, ciliumMI(true, true, true), mesh.CiliumNode),
		cilium: CiliumInstall{MutualAuth: true, Envoy: true}},
	{name: "cilium/no-mutual-auth", scope: install(meshv1alpha1.ProviderCilium, ciliumMI(false, false, true), mesh.CiliumNode),
		cilium: CiliumInstall{Envoy: true}},
	{name: "cilium/no-envoy", scope: install(meshv1alpha1.ProviderCilium, ciliumMI(true, true, false), mesh.CiliumNode),
		cilium: CiliumInstall{MutualAuth: true}},
}

// translate decides and translates (for the target's namespace facts, as
// the controllers do); refused reports an UnsupportedFeature
// refusal, which the property accepts.
func translate(reg *mesh.Registry, tg target, required []mesh.Capability, tr func() ([]client.Object, error)) (objs []client.Object, refused bool, err error) {
	err = reg.Decide(tg.scope, required...)
	if err == nil {
		objs, err = tr()
	}
	var uf *mesh.UnsupportedFeatureError
	if errors.As(err, &uf) || (err != nil && outcome.Reason(err, "") == meshv1alpha1.UnsupportedFeatureReason) {
		return nil, true, nil
	}
	return objs, false, err
}

// checkPolicy requires every target's verdict on every sample request to
// equal the intent, or the policy to be refused.
func checkPolicy(t *testing.T, reg *mesh.Registry, p *meshv1alpha1.ZeroTrustPolicy, tally map[string]int) {
	t.Helper()
	for _, tg := range targets {
		pt, _ := reg.PolicyTranslator(tg.scope.Install.Provider)
		objs, refused, err := translate(reg, tg, mesh.ZeroTrustPolicyRequirements(&p.Spec), func() ([]client.Object, error) {
			return mesh.TranslateZeroTrustPolicy(pt, p.DeepCopy(), tg.scope.Namespace)
		})
		if err != nil {
			t.Fatalf("%s: %v\nspec %s", tg.name, err, js(p.Spec))
		}
		if refused {
			tally[tg.name+" refused"]++
			continue
		}
		tally[tg.name+" checked"]++
		for _, r := range policyRequests() {
			var got bool
			switch tg.scope.Install.Provider {
			case meshv1alpha1.ProviderIstio:
				got = IstioAllows(objs, tg.ztunnel, r)
			case meshv1alpha1.ProviderLinkerd:
				got = LinkerdAllows(objs, ns, r)
			default:
				got = CiliumAllows(objs, tg.cilium, r)
			}
			if want := Allows(&p.Spec, ns, r); got != want {
				t.Fatalf("%s enforces %v, intent %v\nrequest %+v\nspec %s", tg.name, got, want, r, js(p.Spec))
			}
		}
	}
}

// checkSplit requires every target's route for every sample request to
// equal the intent, or the split to be refused.
func checkSplit(t *testing.T, reg *mesh.Registry, ts *meshv1alpha1.TrafficSplit, tally map[string]int) {
	t.Helper()
	for _, tg := range targets {
		tt, _ := reg.TrafficTranslator(tg.scope.Install.Provider)
		objs, refused, err := translate(reg, tg, mesh.TrafficSplitRequirements(&ts.Spec), func() ([]client.Object, error) {
			return mesh.TranslateTrafficSplit(tt, ts.DeepCopy(), tg.scope.Namespace)
		})
		if err != nil {
			t.Fatalf("%s: %v\nspec %s", tg.name, err, js(ts.Spec))
		}
		if refused {
			tally[tg.name+" refused"]++
			continue
		}
		tally[tg.name+" checked"]++
		for _, r := range routeRequests() {
			got, ok := VirtualServiceRoutes(objs, r)
			if !ok {
				got, ok = HTTPRouteRoutes(objs, r)
			}
			want := Routes(&ts.Spec, r)
			if !ok || !maps.Equal(nonZero(got), nonZero(want)) {
				t.Fatalf("%s routes %v (matched %v), intent %v\nrequest %+v\nspec %s", tg.name, got, ok, want, r, js(ts.Spec))
			}
		}
	}
}

func nonZero(r Route) Route {
	out := Route{}
	for k, v := range r {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkSeed generates one policy and one split from seed and checks both.
func checkSeed(t *testing.T, reg *mesh.Registry, seed uint64, tally map[string]int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	checkPolicy(t, reg, genPolicy(rng), tally)
	checkSplit(t, reg, genSplit(rng), tally)
}

// TestOracle is the property: for random TrafficSplits and
// ZeroTrustPolicies, every mesh and data-plane mode either refuses with
// UnsupportedFeature or enforces exactly the intent on every sample
// request.
func TestOracle(t *testing.T) {
	reg := providers.Registry()
	tally := map[string]int{}
	for i := range *specs {
		checkSeed(t, reg, uint64(i)+1, tally)
	}
	// The property must not hold vacuously: every target checks some of
	// each kind.
	for _, tg := range targets {
		if tally[tg.name+" checked"] == 0 {
			t.Errorf("%s checked no spec (tally %v)", tg.name, tally)
		}
	}
	t.Logf("tally: %v", tally)
}

// FuzzOracle runs the property on seeds the fuzzer picks (make fuzz).
func FuzzOracle(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s)
	}
	reg := providers.Registry()
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkSeed(t, reg, seed, map[string]int{})
	})
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

// subset returns a non-empty random subset of xs when nonEmpty, else a
// possibly empty one.
func subset[T any](rng *rand.Rand, nonEmpty bool, xs ...T) []T {
	for {
		var out []T
		for _, x := range xs {
			if rng.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		if len(out) > 0 || !nonEmpty {
			return out
		}
	}
}

func genPolicy(rng *rand.Rand) *meshv1alpha1.ZeroTrustPolicy {
	p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}
	if rng.IntN(3) == 0 {
		p.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
	}
	if rng.IntN(6) == 0 {
		p.Spec.DefaultAction = meshv1alpha1.ActionAllow
		return p
	}
	for range rng.IntN(4) {
		var rule meshv1alpha1.AllowRule
		for range rng.IntN(3) {
			if rng.IntN(2) == 0 {
				rule.From = append(rule.From, meshv1alpha1.TrafficSource{ServiceAccounts: subset(rng, true, "frontend", "other/backend")})
			} else {
				rule.From = append(rule.From, meshv1alpha1.TrafficSource{Namespaces: subset(rng, true, "other", "third")})
			}
		}
		for range rng.IntN(3) {
			var d meshv1alpha1.TrafficDestination
			for len(d.Ports)+len(d.Methods)+len(d.Paths) == 0 {
				d.Ports = subset(rng, rng.IntN(4) != 0, int32(8080), int32(9090))
				d.Methods = subset(rng, false, meshv1alpha1.HTTPMethod("GET"), meshv1alpha1.HTTPMethod("POST"))
				d.Paths = subset(rng, false, "/api/*", "/health", "/ap*")
			}
			rule.To = append(rule.To, d)
		}
		if len(rule.From)+len(rule.To) == 0 {
			rule.To = []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}}
		}
		p.Spec.Rules = append(p.Spec.Rules, rule)
	}
	return p
}

func policyRequests() []Request {
	callers := []Request{
		{Meshed: true, Namespace: ns, ServiceAccount: "frontend"},
		{Meshed: true, Namespace: "other", ServiceAccount: "backend"},
		{Meshed: true, Namespace: "other", ServiceAccount: "x"},
		{Meshed: true, Namespace: "third", ServiceAccount: "frontend"},
		{},
	}
	var out []Request
	for _, c := range callers {
		for _, port := range []int32{8080, 9090, 7070} {
			for _, m := range []string{"GET", "POST", "DELETE"} {
				for _, path := range []string{"/api/v1", "/api/", "/api", "/apix", "/health", "/healthz", "/"} {
					r := c
					r.Port, r.Method, r.Path = port, m, path
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func genBackends(rng *rand.Rand) []meshv1alpha1.WeightedBackend {
	names := subset(rng, true, "web-v1", "web-v2", "web-v3")
	var out []meshv1alpha1.WeightedBackend
	left := int32(100)
	for i, n := range names {
		w := left
		if i < len(names)-1 {
			w = rng.Int32N(left + 1)
		}
		left -= w
		out = append(out, meshv1alpha1.WeightedBackend{Name: n, Weight: w})
	}
	return out
}

func genMatch(rng *rand.Rand) meshv1alpha1.HTTPMatch {
	var m meshv1alpha1.HTTPMatch
	if rng.IntN(2) == 0 {
		m.Path = &meshv1alpha1.HTTPPathMatch{Type: pick(rng, meshv1alpha1.PathMatchExact, meshv1alpha1.PathMatchPathPrefix),
			Value: pick(rng, "/api", "/api/v1", "/")}
	}
	if rng.IntN(2) == 0 {
		m.Method = pick(rng, meshv1alpha1.HTTPMethod("GET"), meshv1alpha1.HTTPMethod("POST"))
	}
	if rng.IntN(2) == 0 {
		m.Headers = []meshv1alpha1.HTTPHeaderMatch{pick(rng,
			meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Value: "beta"},
			meshv1alpha1.HTTPHeaderMatch{Name: "X-User", Type: meshv1alpha1.HeaderMatchPrefix, Value: "be"},
			meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Type: meshv1alpha1.HeaderMatchRegularExpression, Value: "b[a-z]+"})}
	}
	return m
}

func genSplit(rng *rand.Rand) *meshv1alpha1.TrafficSplit {
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web", Port: ptr(int32(8080))}, Backends: genBackends(rng)}}
	ts.Spec.Output = pick(rng, meshv1alpha1.TrafficOutput(""), meshv1alpha1.OutputNative, meshv1alpha1.OutputGatewayAPI)
	for i := range rng.IntN(4) {
		rule := meshv1alpha1.TrafficRule{Name: fmt.Sprintf("r%d", i), Backends: genBackends(rng)}
		for range 1 + rng.IntN(2) {
			rule.Matches = append(rule.Matches, genMatch(rng))
		}
		ts.Spec.Rules = append(ts.Spec.Rules, rule)
	}
	return ts
}

func routeRequests() []Request {
	var out []Request
	for _, path := range []string{"/api", "/api/v1", "/api/v1/x", "/apix", "/", "/other"} {
		for _, m := range []string{"GET", "POST"} {
			for _, h := range []map[string]string{nil, {"x-user": "beta"}, {"x-user": "bob"}} {
				out = append(out, Request{Method: m, Path: path, Headers: h})
			}
		}
	}
	return out
}
func ptr[T any](v T) *T { return &v }
