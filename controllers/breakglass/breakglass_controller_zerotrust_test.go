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
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

var (
	linkerdServerGVK = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "Server"}
	linkerdAuthzGVK  = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "AuthorizationPolicy"}
	cnpGVK           = schema.GroupVersionKind{Group: "cilium.io", Version: "v2", Kind: "CiliumNetworkPolicy"}
)

// TestRelaxZeroTrustPolicyOutputs: ZeroTrustPolicies translated by the
// real controller on Istio, Linkerd and Cilium are relaxed by a BreakGlass
// and restored byte for byte.
func TestRelaxZeroTrustPolicyOutputs(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	must(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}})))
	namespaces := map[meshv1alpha1.Provider]*corev1.Namespace{
		meshv1alpha1.ProviderIstio:   {ObjectMeta: metav1.ObjectMeta{Name: "z-istio", Labels: map[string]string{"istio-injection": "enabled"}}},
		meshv1alpha1.ProviderLinkerd: {ObjectMeta: metav1.ObjectMeta{Name: "z-linkerd", Annotations: map[string]string{"linkerd.io/inject": "enabled"}}},
		meshv1alpha1.ProviderCilium:  {ObjectMeta: metav1.ObjectMeta{Name: "z-cilium"}},
	}
	// The ZeroTrustPolicy controller translates and applies, and keeps
	// running throughout: while a BreakGlass covers a namespace it must
	// leave the relaxed outputs alone (it watches them, so a re-apply would
	// show here as strict outputs) and say BreakGlassActive.
	startManager(t, cfg, -1, zerotrustpolicy.Setup)
	// The namespaces stay (envtest deletes none), as members of no mesh, so
	// no other test's BreakGlass covers them.
	t.Cleanup(func() {
		for _, ns := range namespaces {
			_ = c.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}}, client.RawPatch(types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"istio-injection":null},"annotations":{"linkerd.io/inject":null}}}`)))
			_ = c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}})
		}
		_ = c.Delete(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"}})
	})
	// Cilium serves a namespace implicitly once a MeshInstall installs it
	// (no MeshInstall controller runs here; the object is enough).
	must(t, c.Create(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
			// Strict policies on Cilium need mutual authentication and
			// encryption.
			Cilium: &meshv1alpha1.CiliumInstallSpec{MutualAuth: true,
				Encryption: &meshv1alpha1.CiliumEncryption{Type: meshv1alpha1.CiliumEncryptionWireGuard}}}}))
	for p, ns := range namespaces {
		must(t, c.Create(ctx, ns))
		pol := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns.Name},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
				From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
				To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}},
			}}}}
		must(t, c.Create(ctx, pol))
		eventually(t, "ZeroTrustPolicy Ready on "+string(p), func() error {
			must(t, c.Get(ctx, client.ObjectKeyFromObject(pol), pol))
			if !status.IsTrue(&pol.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
				return fmt.Errorf("%+v", pol.Status.Conditions)
			}
			return nil
		})
	}
	kinds := []schema.GroupVersionKind{peerAuthGVK, authzGVK, linkerdServerGVK, linkerdAuthzGVK, cnpGVK}
	before := snapshot(t, c, kinds...)

	startManager(t, cfg, 0)
	for p, ns := range namespaces {
		must(t, c.Create(ctx, breakGlass("relax-"+strings.ToLower(string(p)), func(bg *meshv1alpha1.BreakGlass) {
			bg.Spec.Target.Provider = p
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{Namespaces: []string{ns.Name}}
		})))
	}
	for p := range namespaces {
		bg := waitPhase(t, c, "relax-"+strings.ToLower(string(p)), meshv1alpha1.BreakGlassEngaged)
		if bg.Status.Touched.Policies == 0 {
			t.Errorf("%s: no policy relaxed: %+v", p, bg.Status.Touched)
		}
	}
	for _, ns := range namespaces {
		key := client.ObjectKey{Namespace: ns.Name, Name: "web"}
		eventually(t, "ZeroTrustPolicy held in "+ns.Name, func() error {
			pol := &meshv1alpha1.ZeroTrustPolicy{}
			must(t, c.Get(ctx, key, pol))
			if !status.IsTrue(&pol.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition) {
				return fmt.Errorf("%+v", pol.Status.Conditions)
			}
			return nil
		})
	}
	// Give the ZeroTrustPolicy controller time to (wrongly) re-apply.
	time.Sleep(2 * time.Second)
	get := func(gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u))
		return u
	}
	str := func(u *unstructured.Unstructured, path ...string) string {
		v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
		return fmt.Sprint(v)
	}
	checks := []struct{ what, got, want string }{
		{"Istio PeerAuthentication mode", str(get(peerAuthGVK, "z-istio", "web"), "spec", "mtls", "mode"), "PERMISSIVE"},
		{"Istio AuthorizationPolicy rules", str(get(authzGVK, "z-istio", "web"), "spec", "rules"), "[map[]]"},
		{"Linkerd Server accessPolicy", str(get(linkerdServerGVK, "z-linkerd", "web-8080"), "spec", "accessPolicy"), "all-unauthenticated"},
		{"Linkerd AuthorizationPolicy authentication", str(get(linkerdAuthzGVK, "z-linkerd", "web-r0-d0-8080"), "spec", "requiredAuthenticationRefs"), "[]"},
		{"Cilium policy ingress", str(get(cnpGVK, "z-cilium", "web"), "spec", "ingress"), "[map[fromEntities:[all]]]"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %s, want %s", ck.what, ck.got, ck.want)
		}
	}
	ns := &corev1.Namespace{}
	must(t, c.Get(ctx, client.ObjectKey{Name: "z-linkerd"}, ns))
	if ns.Annotations["config.linkerd.io/default-inbound-policy"] != "all-unauthenticated" {
		t.Errorf("z-linkerd annotations %v", ns.Annotations)
	}

	for p := range namespaces {
		must(t, c.Delete(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "relax-" + strings.ToLower(string(p))}}))
	}
	for p := range namespaces {
		waitGone(t, c, "relax-"+strings.ToLower(string(p)))
	}
	for _, ns := range namespaces {
		key := client.ObjectKey{Namespace: ns.Name, Name: "web"}
		eventually(t, "ZeroTrustPolicy enforced again in "+ns.Name, func() error {
			pol := &meshv1alpha1.ZeroTrustPolicy{}
			must(t, c.Get(ctx, key, pol))
			if status.Get(&pol.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition) != nil ||
				!status.IsTrue(&pol.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
				return fmt.Errorf("%+v", pol.Status.Conditions)
			}
			return nil
		})
	}
	if after := snapshot(t, c, kinds...); after != before {
		t.Fatalf("policies not restored byte for byte:\n%s", diff(before, after))
	}
}
