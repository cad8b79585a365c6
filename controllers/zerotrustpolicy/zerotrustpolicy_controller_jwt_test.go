package zerotrustpolicy

import (
	"strings"
	"testing"

	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

// jwtPolicy requires a token of https://auth.example.com from the
// frontend's callers, and the admin group for POST.
func jwtPolicy(ns, name string) *meshv1alpha1.ZeroTrustPolicy {
	p := policy(ns, name)
	p.Spec.JWT = &meshv1alpha1.JWTSettings{Issuers: []meshv1alpha1.JWTIssuer{{Issuer: "https://auth.example.com",
		JWKSURI: "https://auth.example.com/jwks.json", Audiences: []string{"shop"}}}}
	p.Spec.Rules[0].RequestPrincipals = []string{"https://auth.example.com/*"}
	p.Spec.Rules = append(p.Spec.Rules, meshv1alpha1.AllowRule{Name: "admins",
		To:     []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"POST"}}},
		Claims: []meshv1alpha1.JWTClaim{{Name: "groups", Values: []string{"admin"}}}})
	return p
}

// TestZeroTrustPolicyJWT: on Istio (sidecar) a RequestAuthentication is
// written beside the policies and the token rules go into the
// AuthorizationPolicy; removing spec.jwt prunes it. On Linkerd the policy
// is refused naming the alternative, and nothing is written. In an ambient
// namespace it is refused until a waypoint serves the namespace, then
// bound to the waypoint.
func TestZeroTrustPolicyJWT(t *testing.T) {
	_, c := start(t)

	t.Run("Istio sidecar", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, jwtPolicy(ns, "web")))
		key := types.NamespacedName{Namespace: ns, Name: "web"}
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
		ra := &istiosecurity.RequestAuthentication{}
		must(t, c.Get(ctx, key, ra))
		if !ownership.IsOwnedBy(ra, Kind, ns, "web") || len(ra.Spec.JwtRules) != 1 || ra.Spec.JwtRules[0].JwksUri != "https://auth.example.com/jwks.json" {
			t.Fatalf("RequestAuthentication %v %v", ra.Labels, ra.Spec.String())
		}
		ap := &istiosecurity.AuthorizationPolicy{}
		must(t, c.Get(ctx, key, ap))
		if got := ap.Spec.Rules[0].From[0].Source.RequestPrincipals; len(got) != 1 || got[0] != "https://auth.example.com/*" {
			t.Fatalf("rule 0 principals %v", ap.Spec.String())
		}
		if w := ap.Spec.Rules[1].When; len(w) != 1 || w[0].Key != "request.auth.claims[groups]" || w[0].Values[0] != "admin" {
			t.Fatalf("rule 1 when %v", ap.Spec.String())
		}
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec = policy(ns, "web").Spec
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "RequestAuthentication pruned", func() error {
			if err := ready(c, key); err != nil {
				return err
			}
			if err := c.Get(ctx, key, &istiosecurity.RequestAuthentication{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("RequestAuthentication: %v", err)
			}
			return nil
		})
	})

	t.Run("Linkerd refuses naming the alternative", func(t *testing.T) {
		ns := linkerdNamespace(t, c)
		p := jwtPolicy(ns, "web")
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			r := reason(c, key)
			if !strings.HasPrefix(r, "UnsupportedFeature: features JWTAuthentication, JWTRules are not supported by Linkerd") ||
				!strings.Contains(r, "validate them at an ingress gateway") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-8080"}, &istiosecurity.AuthorizationPolicy{}); !apierrors.IsNotFound(err) {
			t.Fatalf("written on refusal: %v", err)
		}
	})

	t.Run("ambient needs a waypoint", func(t *testing.T) {
		ns := testenv.AmbientNamespace(t, c, nil)
		must(t, c.Create(ctx, jwtPolicy(ns, "web")))
		key := types.NamespacedName{Namespace: ns, Name: "web"}
		testenv.Eventually(t, testenv.DefaultTimeout, "refused without a waypoint", func() error {
			if r := reason(c, key); !strings.HasPrefix(r, "UnsupportedFeature: spec.jwt: namespace "+ns+" is ambient and no waypoint serves it") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, key, &istiosecurity.RequestAuthentication{}); !apierrors.IsNotFound(err) {
			t.Fatalf("RequestAuthentication written on refusal: %v", err)
		}
		testenv.UseWaypoint(t, c, ns, "waypoint")
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready with a waypoint", func() error { return ready(c, key) })
		ra := &istiosecurity.RequestAuthentication{}
		must(t, c.Get(ctx, key, ra))
		if ra.Spec.Selector != nil || len(ra.Spec.TargetRefs) != 1 || ra.Spec.TargetRefs[0].Name != "waypoint" {
			t.Fatalf("RequestAuthentication not bound to the waypoint: %v", ra.Spec.String())
		}
	})
}
