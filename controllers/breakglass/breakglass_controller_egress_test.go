package breakglass_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/egresspolicy"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

var (
	sidecarGVK       = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "Sidecar"}
	requestAuthnGVK  = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication"}
	egressNetworkGVK = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "EgressNetwork"}
)

// TestRelaxEgressAndJWT: a BreakGlass lifts the egress allow-lists
// EgressPolicies wrote (Istio's Sidecar to ALLOW_ANY, Linkerd's
// EgressNetwork to Allow) and the token requirements of a JWT
// ZeroTrustPolicy (RequestAuthentication without jwtRules, the
// AuthorizationPolicy allowing every request); the policies are held
// meanwhile, and deleting the BreakGlass restores every output byte for
// byte.
func TestRelaxEgressAndJWT(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	must(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}})))
	namespaces := map[meshv1alpha1.Provider]*corev1.Namespace{
		meshv1alpha1.ProviderIstio:   {ObjectMeta: metav1.ObjectMeta{Name: "eg-istio", Labels: map[string]string{"istio-injection": "enabled"}}},
		meshv1alpha1.ProviderLinkerd: {ObjectMeta: metav1.ObjectMeta{Name: "eg-linkerd", Annotations: map[string]string{"linkerd.io/inject": "enabled"}}},
	}
	startManager(t, cfg, -1, egresspolicy.Setup, zerotrustpolicy.Setup)
	t.Cleanup(func() {
		for _, ns := range namespaces {
			_ = c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}}, client.RawPatch(types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"istio-injection":null},"annotations":{"linkerd.io/inject":null}}}`)))
			_ = c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}})
		}
	})
	var objs []client.Object
	for _, ns := range namespaces {
		must(t, c.Create(ctx, ns))
		eg := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "out", Namespace: ns.Name},
			Spec: meshv1alpha1.EgressPolicySpec{Rules: []meshv1alpha1.EgressRule{{Name: "api", Hosts: []string{"api.example.com"},
				Ports: []meshv1alpha1.EgressPort{{Number: 80, Protocol: meshv1alpha1.EgressHTTP}}}}}}
		must(t, c.Create(ctx, eg))
		objs = append(objs, eg)
	}
	jwt := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "jwt", Namespace: "eg-istio"},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{
			JWT:   &meshv1alpha1.JWTSettings{Issuers: []meshv1alpha1.JWTIssuer{{Issuer: "https://auth.example.com", JWKSURI: "https://auth.example.com/jwks.json"}}},
			Rules: []meshv1alpha1.AllowRule{{To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}}, RequestPrincipals: []string{"*"}}}}}
	must(t, c.Create(ctx, jwt))
	objs = append(objs, jwt)
	conditions := func(o client.Object) *meshv1alpha1.CommonStatus {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(o), o))
		return o.(status.Object).GetCommonStatus()
	}
	for _, o := range objs {
		eventually(t, "Ready: "+o.GetNamespace()+"/"+o.GetName(), func() error {
			if st := conditions(o); !status.IsTrue(st, meshv1alpha1.ReadyCondition) {
				return fmt.Errorf("%+v", st.Conditions)
			}
			return nil
		})
	}
	kinds := []schema.GroupVersionKind{sidecarGVK, requestAuthnGVK, authzGVK, egressNetworkGVK}
	before := snapshot(t, c, kinds...)

	startManager(t, cfg, 0)
	for p, ns := range namespaces {
		must(t, c.Create(ctx, breakGlass("egress-"+strings.ToLower(string(p)), func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Target.Provider = p
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: []string{ns.Name}}
		})))
	}
	for p := range namespaces {
		if bg := waitPhase(t, c, "egress-"+strings.ToLower(string(p)), meshv1alpha1.BreakGlassEngaged); bg.Status.Touched.Policies == 0 {
			t.Errorf("%s: no policy relaxed: %+v", p, bg.Status.Touched)
		}
	}
	for _, o := range objs {
		eventually(t, "held: "+o.GetNamespace()+"/"+o.GetName(), func() error {
			if st := conditions(o); !status.IsTrue(st, meshv1alpha1.BreakGlassActiveCondition) {
				return fmt.Errorf("%+v", st.Conditions)
			}
			return nil
		})
	}
	// Give the policy controllers time to (wrongly) re-apply.
	time.Sleep(2 * time.Second)
	str := func(gvk schema.GroupVersionKind, ns, name string, path ...string) string {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u))
		v, found, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
		if !found {
			return "<none>"
		}
		return fmt.Sprint(v)
	}
	checks := []struct{ what, got, want string }{
		{"Istio Sidecar mode", str(sidecarGVK, "eg-istio", "out", "spec", "outboundTrafficPolicy", "mode"), "ALLOW_ANY"},
		{"Istio RequestAuthentication jwtRules", str(requestAuthnGVK, "eg-istio", "jwt", "spec", "jwtRules"), "<none>"},
		{"Istio AuthorizationPolicy rules", str(authzGVK, "eg-istio", "jwt", "spec", "rules"), "[map[]]"},
		{"Linkerd EgressNetwork trafficPolicy", str(egressNetworkGVK, "eg-linkerd", "out", "spec", "trafficPolicy"), "Allow"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %s, want %s", ck.what, ck.got, ck.want)
		}
	}

	for p := range namespaces {
		must(t, c.Delete(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "egress-" + strings.ToLower(string(p))}}))
	}
	for p := range namespaces {
		waitGone(t, c, "egress-"+strings.ToLower(string(p)))
	}
	for _, o := range objs {
		eventually(t, "enforced again: "+o.GetNamespace()+"/"+o.GetName(), func() error {
			st := conditions(o)
			if status.Get(st, meshv1alpha1.BreakGlassActiveCondition) != nil || !status.IsTrue(st, meshv1alpha1.ReadyCondition) {
				return fmt.Errorf("%+v", st.Conditions)
			}
			return nil
		})
	}
	if after := snapshot(t, c, kinds...); after != before {
		t.Fatalf("outputs not restored byte for byte:\n%s", diff(before, after))
	}
}
