package oracle

import (
	"fmt"
	"math/rand/v2"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

var jwtIssuers = []string{"https://a.example.com", "https://b.example.com"}

// randomJWTPolicy draws a schema-valid ZeroTrustPolicy with spec.jwt.
func randomJWTPolicy(rng *rand.Rand) meshv1alpha1.ZeroTrustPolicySpec {
	s := meshv1alpha1.ZeroTrustPolicySpec{MTLS: &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}, DefaultAction: meshv1alpha1.ActionDeny,
		JWT: &meshv1alpha1.JWTSettings{}}
	for _, is := range jwtIssuers[:1+rng.IntN(2)] {
		s.JWT.Issuers = append(s.JWT.Issuers, meshv1alpha1.JWTIssuer{Issuer: is, JWKSURI: is + "/jwks.json"})
	}
	if rng.IntN(6) == 0 {
		s.DefaultAction = meshv1alpha1.ActionAllow
		return s
	}
	for range 1 + rng.IntN(2) {
		var r meshv1alpha1.AllowRule
		switch rng.IntN(3) {
		case 0:
			r.From = []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}}
		case 1:
			r.From = []meshv1alpha1.TrafficSource{{Namespaces: []string{"edge"}}, {ServiceAccounts: []string{"frontend"}}}
		}
		if rng.IntN(2) == 0 {
			r.To = []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}}
		}
		switch rng.IntN(4) {
		case 0:
			r.RequestPrincipals = []string{"*"}
		case 1:
			r.RequestPrincipals = []string{jwtIssuers[0] + "/alice"}
		case 2:
			r.RequestPrincipals = []string{jwtIssuers[0] + "/*"}
		}
		if rng.IntN(2) == 0 {
			r.Claims = []meshv1alpha1.JWTClaim{{Name: "groups", Values: []string{"admin"}}}
		}
		if r.From == nil && r.To == nil && r.RequestPrincipals == nil && r.Claims == nil {
			r.RequestPrincipals = []string{"*"}
		}
		s.Rules = append(s.Rules, r)
	}
	return s
}

// jwtRequests are callers (meshed frontend, meshed edge/gw, not meshed) ×
// port and method × token (none, two of issuer a with and without the
// admin group, one of issuer b, one of an unknown issuer).
func jwtRequests() []JWTRequest {
	callers := []Request{{Meshed: true, Namespace: ns, ServiceAccount: "frontend"}, {Meshed: true, Namespace: "edge", ServiceAccount: "gw"}, {}}
	tokens := []*Token{nil,
		{Issuer: jwtIssuers[0], Subject: "alice", Claims: map[string][]string{"groups": {"admin", "dev"}}},
		{Issuer: jwtIssuers[0], Subject: "bob", Claims: map[string][]string{"groups": {"dev"}}},
		{Issuer: jwtIssuers[1], Subject: "alice", Claims: map[string][]string{"groups": {"admin"}}},
		{Issuer: "https://evil.example.com", Subject: "alice", Claims: map[string][]string{"groups": {"admin"}}},
	}
	var out []JWTRequest
	for _, c := range callers {
		for _, pm := range []struct {
			port   int32
			method string
		}{{8080, "GET"}, {8080, "POST"}, {9090, "GET"}} {
			for _, t := range tokens {
				r := c
				r.Port, r.Method, r.Path = pm.port, pm.method, "/"
				out = append(out, JWTRequest{Request: r, Token: t})
			}
		}
	}
	return out
}

// TestJWTOracle: for random ZeroTrustPolicies with request
// authentication, Istio's model on the generated objects allows exactly
// the requests the policy means to; Linkerd and Cilium refuse them.
func TestJWTOracle(t *testing.T) {
	reg := providers.Registry()
	rng := rand.New(rand.NewPCG(19, 3))
	checked := 0
	for i := range *specs {
		spec := randomJWTPolicy(rng)
		for _, tg := range targets {
			pt, err := reg.PolicyTranslator(tg.scope.Install.Provider)
			if err != nil {
				t.Fatal(err)
			}
			p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: ns}, Spec: *spec.DeepCopy()}
			objs, refused, err := translate(reg, tg, mesh.ZeroTrustPolicyRequirements(&p.Spec), func() ([]client.Object, error) {
				return mesh.TranslateZeroTrustPolicy(pt, p, tg.scope.Namespace)
			})
			if err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
			if tg.name != "istio/sidecar" {
				if !refused {
					t.Fatalf("%s translated a JWT policy: %v", tg.name, objs)
				}
				continue
			}
			if refused {
				t.Fatalf("Istio refused %+v", spec)
			}
			checked++
			for _, r := range jwtRequests() {
				if got, want := IstioJWTAllows(objs, r), JWTIntent(&spec, ns, r); got != want {
					t.Fatalf("spec %+v\nrequest %+v token %+v: Istio would allow=%v, the policy means %v", spec, r.Request, r.Token, got, want)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no JWT policy translated on Istio")
	}
}
