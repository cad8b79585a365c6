package zerotrustpolicy

import (
	"testing"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestCiliumStrictNeedsMutualAuthAndEncryption: a Strict policy on Cilium
// is refused, naming exactly what to set on the MeshInstall, until both
// mutual authentication and encryption are on; the refusal writes nothing,
// the MeshInstall's change re-decides it, and the Ready message says what
// is and is not enforced.
func TestCiliumStrictNeedsMutualAuthAndEncryption(t *testing.T) {
	_, c := start(t)
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium-caps"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
			Cilium: &meshv1alpha1.CiliumInstallSpec{}}}
	must(t, c.Create(ctx, mi))
	t.Cleanup(func() { _ = c.Delete(ctx, mi) })
	ns := testenv.Namespace(t, c, nil)
	p := policy(ns, "web")
	p.Spec.Provider = meshv1alpha1.ProviderCilium
	must(t, c.Create(ctx, p))
	key := types.NamespacedName{Namespace: ns, Name: "web"}

	const prefix = "UnsupportedFeature: feature MTLSStrict is not supported by Cilium as installed by MeshInstall cilium-caps in namespace "
	refused := func(missing string) {
		t.Helper()
		want := prefix + ns + " (CiliumNode data plane): set " + missing +
			" on MeshInstall cilium-caps (mTLS Strict means authenticated and encrypted), or use mtls.mode Permissive, " +
			"or remove the feature from the spec (nothing was applied)"
		testenv.Eventually(t, testenv.DefaultTimeout, "refused naming "+missing, func() error {
			if r := reason(c, key); r != want {
				return testenv.Errorf("got  %s\nwant %s", r, want)
			}
			return nil
		})
		if err := c.Get(ctx, key, &ciliumv2.CiliumNetworkPolicy{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a refused policy wrote its CiliumNetworkPolicy: %v", err)
		}
	}
	setInstall := func(mutual bool, enc *meshv1alpha1.CiliumEncryption) {
		t.Helper()
		cur := &meshv1alpha1.MeshInstall{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(mi), cur))
		cur.Spec.Cilium.MutualAuth, cur.Spec.Cilium.Encryption = mutual, enc
		must(t, c.Update(ctx, cur))
	}

	refused("spec.cilium.mutualAuth and spec.cilium.encryption")
	setInstall(true, nil)
	refused("spec.cilium.encryption")
	setInstall(false, &meshv1alpha1.CiliumEncryption{Type: meshv1alpha1.CiliumEncryptionWireGuard})
	refused("spec.cilium.mutualAuth")

	setInstall(true, &meshv1alpha1.CiliumEncryption{Type: meshv1alpha1.CiliumEncryptionWireGuard})
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready once both hold", func() error {
		want := "Succeeded: 1 output(s) applied for Cilium: identity-based L3/L4 policy enforced, L7 HTTP rules by Cilium's Envoy; " +
			"traffic mutually authenticated and encrypted (WireGuard)"
		if r := reason(c, key); r != want {
			return testenv.Errorf("got  %s\nwant %s", r, want)
		}
		return c.Get(ctx, key, &ciliumv2.CiliumNetworkPolicy{})
	})

	// Permissive is accepted without either, and says what that means.
	setInstall(false, nil)
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
		return c.Update(ctx, cur)
	}))
	testenv.Eventually(t, testenv.DefaultTimeout, "Permissive says what is not enforced", func() error {
		want := "Succeeded: 1 output(s) applied for Cilium: identity-based L3/L4 policy enforced, L7 HTTP rules by Cilium's Envoy; " +
			"traffic not authenticated (mutual auth off) and not encrypted (encryption off)"
		if r := reason(c, key); r != want {
			return testenv.Errorf("got  %s\nwant %s", r, want)
		}
		return nil
	})
}
