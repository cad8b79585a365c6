package trust

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

var now = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

func mustRoot(t *testing.T, cn string, kt meshv1alpha1.KeyType) *CA {
	t.Helper()
	r, err := GenerateRoot(RootOptions{CommonName: cn, KeyType: kt, Lifetime: 10 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustIntermediate(t *testing.T, root *CA, cluster string) *CA {
	t.Helper()
	in, err := IssueIntermediate(root, IntermediateOptions{CommonName: "meshplane-intermediate-" + cluster, TrustDomain: "cluster.local"}, now)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// leaf issues a workload certificate from ca, as a mesh's CA would.
func leaf(t *testing.T, ca *CA) *x509.Certificate {
	t.Helper()
	key, _ := GenerateKey("")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "workload"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func verify(leafCert *x509.Certificate, inter *CA, roots *x509.CertPool) error {
	ip := x509.NewCertPool()
	ip.AddCert(inter.Cert)
	_, err := leafCert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: ip, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func TestEveryKeyTypeChainVerifies(t *testing.T) {
	for _, kt := range []meshv1alpha1.KeyType{"", meshv1alpha1.KeyTypeECDSAP256, meshv1alpha1.KeyTypeECDSAP384,
		meshv1alpha1.KeyTypeRSA2048, meshv1alpha1.KeyTypeRSA3072, meshv1alpha1.KeyTypeRSA4096} {
		t.Run(string(kt), func(t *testing.T) {
			root := mustRoot(t, "root", kt)
			want := kt
			if want == "" {
				want = meshv1alpha1.KeyTypeECDSAP256
			}
			if got := KeyTypeOf(root.Cert.PublicKey); got != want {
				t.Fatalf("root key type %s, want %s", got, want)
			}
			for _, cluster := range []string{"east", "west"} {
				in, err := IssueIntermediate(root, IntermediateOptions{CommonName: cluster, KeyType: kt}, now)
				if err != nil {
					t.Fatal(err)
				}
				pool := x509.NewCertPool()
				pool.AddCert(root.Cert)
				if _, err := in.Cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now}); err != nil {
					t.Fatalf("intermediate %s does not verify to its root: %v", cluster, err)
				}
				if !SignedBy(in.Cert, root.Cert) {
					t.Fatal("SignedBy false")
				}
				if err := verify(leaf(t, in), in, pool); err != nil {
					t.Fatalf("leaf: %v", err)
				}
				// Round trip through PEM, as stored in Secrets.
				back, err := ParseCA(in.CertPEM, in.KeyPEM, now)
				if err != nil || back.Fingerprint() != in.Fingerprint() {
					t.Fatalf("round trip: %v", err)
				}
			}
		})
	}
}

func TestIntermediateIsClampedAndPathLenZero(t *testing.T) {
	root := mustRoot(t, "root", "")
	in, err := IssueIntermediate(root, IntermediateOptions{CommonName: "east", Lifetime: 365 * 24 * time.Hour,
		DNSNames: []string{"identity.linkerd.cluster.local"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Cert.NotAfter.Equal(root.Cert.NotAfter) {
		t.Fatalf("NotAfter %s not clamped to root's %s", in.Cert.NotAfter, root.Cert.NotAfter)
	}
	if in.Cert.NotBefore.Before(root.Cert.NotBefore) {
		t.Fatal("NotBefore before root's")
	}
	if !in.Cert.IsCA || in.Cert.MaxPathLen != 0 || !in.Cert.MaxPathLenZero || in.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("intermediate constraints: ca=%v pathlen=%d zero=%v usage=%v", in.Cert.IsCA, in.Cert.MaxPathLen, in.Cert.MaxPathLenZero, in.Cert.KeyUsage)
	}
	// Path length 0: a CA signed by the intermediate does not verify.
	sub, err := IssueIntermediate(&CA{Cert: in.Cert, Key: in.Key}, IntermediateOptions{CommonName: "sub"}, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	ip := x509.NewCertPool()
	ip.AddCert(in.Cert)
	ip.AddCert(sub.Cert)
	opts := x509.VerifyOptions{Roots: pool, Intermediates: ip, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := leaf(t, sub).Verify(opts); err == nil || !strings.Contains(err.Error(), "path length") {
		t.Fatalf("a chain through a second CA under a path-length-0 intermediate: %v", err)
	}
	if _, err := leaf(t, in).Verify(opts); err != nil {
		t.Fatalf("leaf of the intermediate: %v", err)
	}
}

func TestLeavesVerifyAgainstMergedBundle(t *testing.T) {
	a, b := mustRoot(t, "mesh-a", ""), mustRoot(t, "mesh-b", meshv1alpha1.KeyTypeRSA2048)
	ia, ib := mustIntermediate(t, a, "a"), mustIntermediate(t, b, "b")
	merged := MergeBundles([]*x509.Certificate{a.Cert}, []*x509.Certificate{b.Cert, a.Cert}, []*x509.Certificate{b.Cert})
	if len(merged.Certs()) != 2 || merged.Fingerprints()[0] != a.Fingerprint() {
		t.Fatalf("merge: %v", merged.Fingerprints())
	}
	for _, in := range []*CA{ia, ib} {
		if err := verify(leaf(t, in), in, merged.Pool()); err != nil {
			t.Fatalf("leaf of %s against merged bundle: %v", in.Cert.Subject, err)
		}
	}
	onlyA := MergeBundles([]*x509.Certificate{a.Cert})
	if err := verify(leaf(t, ib), ib, onlyA.Pool()); err == nil {
		t.Fatal("leaf of mesh b verified against a bundle without b's root")
	}
	// The PEM form parses back to the same set, and merging it again adds nothing.
	certs, err := ParseCerts(merged.PEM())
	if err != nil || len(certs) != 2 {
		t.Fatalf("parse merged: %v %d", err, len(certs))
	}
	again := MergeBundles(certs, merged.Certs())
	if string(again.PEM()) != string(merged.PEM()) {
		t.Fatal("merging a bundle with itself changed it")
	}
	if r, err := IssuerOf(ib.Cert, merged.Certs()); err != nil || Fingerprint(r) != b.Fingerprint() {
		t.Fatalf("IssuerOf: %v", err)
	}
}

func selfSigned(t *testing.T, mod func(*x509.Certificate)) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := GenerateKey("")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "supplied"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	mod(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := EncodeKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp
}

func TestParseCARejectsBadInput(t *testing.T) {
	other, _ := GenerateKey("")
	otherPEM, _ := EncodeKey(other)
	for _, tc := range []struct {
		name string
		mod  func(*x509.Certificate)
		key  []byte
		want string
	}{
		{"not a CA", func(c *x509.Certificate) { c.IsCA = false }, nil, "is not a CA"},
		{"no cert sign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }, nil, "keyCertSign missing"},
		{"expired", func(c *x509.Certificate) { c.NotAfter = now.Add(-time.Minute) }, nil, "expired at"},
		{"not yet valid", func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) }, nil, "not valid before"},
		{"key mismatch", func(*x509.Certificate) {}, otherPEM, "private key does not match"},
		{"garbage key", func(*x509.Certificate) {}, []byte("nope"), "no PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, k := selfSigned(t, tc.mod)
			if tc.key != nil {
				k = tc.key
			}
			_, err := ParseCA(c, k, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			var ie *InvalidCAError
			if !errors.As(err, &ie) || ie.StalledReason() != meshv1alpha1.InvalidCertificateReason {
				t.Fatalf("not an InvalidCAError: %T", err)
			}
		})
	}
	if _, err := ParseCA([]byte("x"), nil, now); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("garbage cert: %v", err)
	}
}

// TestParseCACertManagerLayout reads a root as cert-manager writes a CA
// Certificate: tls.crt (maybe followed by its issuer), tls.key in SEC 1
// form, ca.crt.
func TestParseCACertManagerLayout(t *testing.T) {
	root := mustRoot(t, "cm-root", "")
	in := mustIntermediate(t, root, "cm")
	der, _ := x509.MarshalECPrivateKey(mustECKey(t, in))
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	chain := append(append([]byte(nil), in.CertPEM...), root.CertPEM...)
	ca, err := ParseCA(chain, sec1, now)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Fingerprint() != in.Fingerprint() {
		t.Fatal("tls.crt's first certificate is not the CA")
	}
	rsaRoot := mustRoot(t, "rsa", meshv1alpha1.KeyTypeRSA2048)
	pk, _ := ParseKey(rsaRoot.KeyPEM)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(mustRSA(t, pk))})
	if _, err := ParseCA(rsaRoot.CertPEM, pkcs1, now); err != nil {
		t.Fatalf("PKCS#1 key: %v", err)
	}
}

func TestRenewal(t *testing.T) {
	root := mustRoot(t, "root", "")
	in, _ := IssueIntermediate(root, IntermediateOptions{CommonName: "x", Lifetime: 48 * time.Hour}, now)
	if NeedsRenewal(in.Cert, 24*time.Hour, now) {
		t.Fatal("fresh intermediate needs renewal")
	}
	if !NeedsRenewal(in.Cert, 24*time.Hour, now.Add(25*time.Hour)) {
		t.Fatal("intermediate within renewBefore does not need renewal")
	}
	if !NeedsRenewal(in.Cert, 0, now.Add(49*time.Hour)) {
		t.Fatal("expired intermediate does not need renewal")
	}
	if got := RenewAt(in.Cert, 24*time.Hour); !got.Equal(in.Cert.NotAfter.Add(-24 * time.Hour)) {
		t.Fatalf("RenewAt %s", got)
	}
}
