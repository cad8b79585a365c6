package meshinstall_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/trust"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestLinkerdGeneratedIdentity installs the real Linkerd charts from a local
// directory with a generated identity, checks the identity, refuses a
// foreign Secret of the same name, and orphans the mesh on deletion.
func TestLinkerdGeneratedIdentity(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageLinkerd(t, dir, "2026.1.1")
	m := startManager(t, cfg)
	c := m.Client

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
			Chart: &meshv1alpha1.ChartSource{Path: dir}},
	}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, c, "linkerd", meshv1alpha1.InstalledCondition, metav1.ConditionTrue, "")
	if len(got.Status.Releases) != 2 || got.Status.Releases[1].Chart != "linkerd-control-plane-2026.1.1" {
		t.Fatalf("releases: %+v", got.Status.Releases)
	}
	testenv.MarkAvailable(t, c, "linkerd")
	got = waitCondition(t, c, "linkerd", meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
	if got.Status.InstalledVersion != "edge-26.1.1" || len(got.Status.Components) < 3 {
		t.Fatalf("status: %+v", got.Status)
	}

	var anchorS, issuerS corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "meshinstall-linkerd-trust-anchor"}, &anchorS); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "meshinstall-linkerd-issuer"}, &issuerS); err != nil {
		t.Fatal(err)
	}
	if len(anchorS.OwnerReferences) != 0 {
		t.Fatal("the generated identity must outlive the MeshInstall (no owner reference)")
	}
	anchor, err := trust.ParseKeyPair(anchorS.Data["tls.crt"], anchorS.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := trust.ParseKeyPair(issuerS.Data["tls.crt"], issuerS.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	if k := anchor.Key.Public().(*ecdsa.PublicKey); k.Curve != elliptic.P256() {
		t.Fatal("anchor is not P-256")
	}
	if err := trust.VerifyIssuer(issuer, []*x509.Certificate{anchor.Cert}, time.Now()); err != nil {
		t.Fatalf("issuer does not chain to the anchor: %v", err)
	}
	var roots corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-identity-trust-roots"}, &roots); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(roots.Data["ca-bundle.crt"]) != strings.TrimSpace(string(anchor.CertPEM)) {
		t.Fatal("linkerd-identity-trust-roots does not hold the generated anchor")
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: "linkerd"}, &ns); err != nil || ns.Labels["linkerd.io/is-control-plane"] != "true" {
		t.Fatalf("control-plane namespace labels: %v (%v)", ns.Labels, err)
	}

	t.Run("a foreign Secret with the identity's name is a Conflict", func(t *testing.T) {
		foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "meshinstall-other-trust-anchor"},
			Data: map[string][]byte{"tls.crt": []byte("theirs")}}
		if err := c.Create(ctx, foreign); err != nil {
			t.Fatal(err)
		}
		other := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "other"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1", Namespace: "linkerd-other",
				Chart: &meshv1alpha1.ChartSource{Path: dir}}}
		if err := c.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		got := waitCondition(t, c, "other", meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.ConflictReason)
		if !strings.Contains(cond(got, meshv1alpha1.StalledCondition).Message, "meshinstall-other-trust-anchor") {
			t.Fatalf("message: %s", cond(got, meshv1alpha1.StalledCondition).Message)
		}
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), &s); err != nil || string(s.Data["tls.crt"]) != "theirs" {
			t.Fatalf("the foreign Secret was modified: %v", err)
		}
		if err := c.Delete(ctx, other); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the multicluster extension is installed in its namespace and uninstalled when no longer listed", func(t *testing.T) {
		testMulticlusterExtension(t, m, dir)
	})

	t.Run("Orphan deletion leaves the mesh running", func(t *testing.T) {
		if err := c.Delete(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "MeshInstall gone", func() error {
			if err := c.Get(ctx, client.ObjectKey{Name: "linkerd"}, &meshv1alpha1.MeshInstall{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
		info, err := mustEngine(t, m).Get(ctx, "linkerd-control-plane", "linkerd")
		if err != nil || info.Status != "deployed" {
			t.Fatalf("control plane release after Orphan deletion: %v %v", info, err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(&anchorS), &corev1.Secret{}); err != nil {
			t.Fatalf("generated identity removed: %v", err)
		}
	})
}
