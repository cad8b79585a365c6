package meshfederation_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/trust"
	"github.com/meshplane/meshplane/test/testenv"
)

// clusterMeshCertSecrets are the four Secrets of the clustermesh-apiserver
// the federation writes into every Cilium member.
var clusterMeshCertSecrets = []string{
	"clustermesh-apiserver-server-cert", "clustermesh-apiserver-admin-cert",
	"clustermesh-apiserver-local-cert", "clustermesh-apiserver-remote-cert",
}

// tlsPair is one written certificate Secret, parsed: the leaf, the chain
// presented after it and the roots of ca.crt.
type tlsPair struct {
	leaf          *x509.Certificate
	intermediates *x509.CertPool
	roots         *x509.CertPool
	chainLen      int
}

func readTLS(t *testing.T, c client.Client, name string) (tlsPair, error) {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "kube-system", Name: name}, s); err != nil {
		return tlsPair{}, err
	}
	if s.Type != corev1.SecretTypeTLS {
		return tlsPair{}, fmt.Errorf("secret %s has type %s", name, s.Type)
	}
	if _, err := trust.ParseKeyPair(s.Data["tls.crt"], s.Data["tls.key"]); err != nil {
		return tlsPair{}, fmt.Errorf("secret %s: %w", name, err)
	}
	chain, err := trust.ParseCerts(s.Data["tls.crt"])
	if err != nil {
		return tlsPair{}, err
	}
	roots, err := trust.ParseCerts(s.Data["ca.crt"])
	if err != nil {
		return tlsPair{}, err
	}
	p := tlsPair{leaf: chain[0], intermediates: x509.NewCertPool(), roots: x509.NewCertPool(), chainLen: len(chain)}
	for _, c := range chain[1:] {
		p.intermediates.AddCert(c)
	}
	for _, r := range roots {
		p.roots.AddCert(r)
	}
	return p, nil
}

// verifyPeers checks ClusterMesh TLS between members a and b as etcd and
// KVStoreMesh run it: a's KVStoreMesh presents its remote certificate to
// b's clustermesh-apiserver, which verifies it against its ca.crt (client
// auth); b's server certificate, presented as <b>.mesh.cilium.io, verifies
// against the ca.crt a's remote certificate Secret carries (server auth).
func verifyPeers(t *testing.T, members map[string]client.Client, a, b string) error {
	t.Helper()
	remote, err := readTLS(t, members[a], "clustermesh-apiserver-remote-cert")
	if err != nil {
		return err
	}
	server, err := readTLS(t, members[b], "clustermesh-apiserver-server-cert")
	if err != nil {
		return err
	}
	if remote.leaf.Subject.CommonName != "remote-"+a {
		return fmt.Errorf("%s's remote certificate CN %q", a, remote.leaf.Subject.CommonName)
	}
	if _, err := remote.leaf.Verify(x509.VerifyOptions{Roots: server.roots, Intermediates: remote.intermediates,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("%s's remote certificate does not verify against %s's server ca.crt: %w", a, b, err)
	}
	for _, name := range []string{b + ".mesh.cilium.io", "clustermesh-apiserver.kube-system.svc", "clustermesh-apiserver.cilium.io"} {
		if _, err := server.leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: remote.roots, Intermediates: server.intermediates,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("%s's server certificate as %s does not verify against %s's ca.crt: %w", b, name, a, err)
		}
	}
	// Without the intermediate in tls.crt, a peer that trusts only the
	// root could not verify: the chain is what makes it work.
	if _, err := server.leaf.Verify(x509.VerifyOptions{DNSName: b + ".mesh.cilium.io", Roots: remote.roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		return fmt.Errorf("%s's server certificate verifies without its chain: it is not signed by the member's intermediate", b)
	}
	return nil
}

// TestCiliumClusterMeshTLS: the federation issues every Cilium member's
// clustermesh-apiserver certificates from the member's intermediate of the
// federation's root, so each member's clients verify against every other
// member's server and back; trust is Distributed while ServicesConnected
// (the chart's cilium-ca is not the trust target any more); a new
// intermediate re-issues them; removing spec.services removes exactly them.
func TestCiliumClusterMeshTLS(t *testing.T) {
	e := setupClusterMesh(t)
	ctx := context.Background()
	// The chart's own CA (Hubble's): the federation neither reads nor
	// writes it in SharedRoot mode.
	hubbleCA := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cilium-ca"}, Data: map[string][]byte{"ca.crt": []byte("chart")}}
	mustCreate(t, e.local, hubbleCA)
	f := federation("mesh")
	for i := range f.Spec.Clusters {
		f.Spec.Clusters[i].Provider = meshv1alpha1.ProviderCilium
		f.Spec.Clusters[i].ClusterID = int32(i + 1)
	}
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
	mustCreate(t, e.local, f)
	names := []string{"local", "east", "west"}

	t.Run("Distributed and ServicesConnected together, certificates verify across members", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "Distributed and ServicesConnected", func() error {
			f := e.get(t)
			for _, typ := range []string{meshv1alpha1.DistributedCondition, meshv1alpha1.ServicesConnectedCondition} {
				if c := apimeta.FindStatusCondition(f.Status.Conditions, typ); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != f.Generation {
					return testenv.Errorf("%s %+v", typ, c)
				}
			}
			return nil
		})
		for _, a := range names {
			for _, b := range names {
				if a != b {
					if err := verifyPeers(t, e.members, a, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, s := range clusterMeshCertSecrets {
				p, err := readTLS(t, e.members[a], s)
				if err != nil {
					t.Fatal(err)
				}
				if p.chainLen != 2 {
					t.Fatalf("%s %s: tls.crt holds %d certificates, want leaf and intermediate", a, s, p.chainLen)
				}
			}
			admin, _ := readTLS(t, e.members[a], "clustermesh-apiserver-admin-cert")
			local, _ := readTLS(t, e.members[a], "clustermesh-apiserver-local-cert")
			if admin.leaf.Subject.CommonName != "admin-"+a || local.leaf.Subject.CommonName != "local-"+a {
				t.Fatalf("%s: admin CN %q, local CN %q", a, admin.leaf.Subject.CommonName, local.leaf.Subject.CommonName)
			}
			// The local client verifies against its own server's ca.crt.
			server, _ := readTLS(t, e.members[a], "clustermesh-apiserver-server-cert")
			if _, err := local.leaf.Verify(x509.VerifyOptions{Roots: server.roots, Intermediates: local.intermediates,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("%s: local certificate: %v", a, err)
			}
		}
		inv := memberSvc(e.get(t), "east").Inventory
		for _, s := range clusterMeshCertSecrets {
			if !slices.ContainsFunc(inv, func(r meshv1alpha1.ObjectReference) bool { return r.Kind == "Secret" && r.Name == s }) {
				t.Fatalf("east's inventory lacks Secret %s: %+v", s, inv)
			}
		}
		got := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKeyFromObject(hubbleCA), got); err != nil || string(got.Data["ca.crt"]) != "chart" {
			t.Fatalf("the chart's cilium-ca changed: %v %q", err, got.Data["ca.crt"])
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		noOpReconciles(t, e.localCfg)
	})

	t.Run("a new intermediate re-issues the certificates", func(t *testing.T) {
		before, err := readTLS(t, e.east, "clustermesh-apiserver-server-cert")
		if err != nil {
			t.Fatal(err)
		}
		f := e.get(t)
		base := f.DeepCopy()
		f.Spec.Intermediate = &meshv1alpha1.IntermediateCA{Lifetime: &metav1.Duration{Duration: 2000 * time.Hour}}
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "certificates re-issued", func() error {
			after, err := readTLS(t, e.east, "clustermesh-apiserver-server-cert")
			if err != nil {
				return err
			}
			if after.leaf.SerialNumber.Cmp(before.leaf.SerialNumber) == 0 || after.leaf.NotAfter.After(time.Now().Add(2001*time.Hour)) {
				return testenv.Errorf("east's server certificate not re-issued: expires %s", after.leaf.NotAfter)
			}
			for _, a := range names {
				for _, b := range names {
					if a != b {
						if err := verifyPeers(t, e.members, a, b); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
	})

	t.Run("removing spec.services removes exactly the certificates; trust stays", func(t *testing.T) {
		f := e.get(t)
		base := f.DeepCopy()
		f.Spec.Services = nil
		if err := e.local.Patch(ctx, f, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "certificates removed", func() error {
			for _, a := range names {
				for _, s := range clusterMeshCertSecrets {
					err := e.members[a].Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: s}, &corev1.Secret{})
					if !apierrors.IsNotFound(err) {
						return testenv.Errorf("%s still holds %s: %v", a, s, err)
					}
				}
			}
			return nil
		})
		for _, a := range names {
			if err := e.members[a].Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "meshplane-clustermesh-ca"}, &corev1.Secret{}); err != nil {
				t.Fatalf("%s lost its ClusterMesh issuer: %v", a, err)
			}
		}
		got := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKeyFromObject(hubbleCA), got); err != nil || !strings.EqualFold(string(got.Data["ca.crt"]), "chart") {
			t.Fatalf("the chart's cilium-ca changed: %v", err)
		}
	})
}
