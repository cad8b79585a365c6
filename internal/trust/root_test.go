package trust

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// TestValidateRoot: a supplied root must allow the per-cluster
// intermediate below it; every message names the certificate and the fix.
func TestValidateRoot(t *testing.T) {
	const pathLen0 = `invalid CA: certificate "CN=supplied" has basic constraints pathlen:0, so it may sign only end-entity certificates, ` +
		`but Meshplane signs a per-cluster intermediate CA with it and every workload chain would fail to verify; issue the root without a path ` +
		`length constraint or with pathlen >= 1 (openssl: basicConstraints=critical,CA:TRUE; cert-manager: isCA: true without a pathlen)`
	for _, tc := range []struct {
		name string
		mod  func(*x509.Certificate)
		want string
	}{
		{"pathlen 0", func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true }, pathLen0},
		{"pathlen 1", func(c *x509.Certificate) { c.MaxPathLen = 1 }, ""},
		{"no pathlen", func(c *x509.Certificate) { c.MaxPathLen = -1 }, ""},
		{"not a CA", func(c *x509.Certificate) { c.IsCA = false },
			`invalid CA: certificate "CN=supplied" is not a CA (basic constraints CA:TRUE missing); supply a CA certificate`},
		{"no basic constraints", func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = false, false },
			`invalid CA: certificate "CN=supplied" is not a CA (basic constraints CA:TRUE missing); supply a CA certificate`},
		{"no certSign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature },
			`invalid CA: certificate "CN=supplied" may not sign certificates (key usage keyCertSign missing)`},
		{"expired", func(c *x509.Certificate) { c.NotAfter = now.Add(-time.Minute).Truncate(time.Second) },
			`invalid CA: certificate "CN=supplied" expired at ` + now.Add(-time.Minute).Truncate(time.Second).UTC().Format(time.RFC3339)},
		{"not yet valid", func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour).Truncate(time.Second) },
			`invalid CA: certificate "CN=supplied" is not valid before ` + now.Add(time.Hour).Truncate(time.Second).UTC().Format(time.RFC3339)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, k := selfSigned(t, tc.mod)
			got := ""
			ca, err := ParseCA(c, k, now)
			if err == nil {
				err = ValidateRoot(ca.Cert, ca.Key, now)
			}
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// An intermediate with pathlen 0 is still a valid CA (ValidateCA), just
	// not a root.
	in := mustIntermediate(t, mustRoot(t, "r", ""), "i")
	if err := ValidateCA(in.Cert, in.Key, now); err != nil {
		t.Fatal(err)
	}
	if err := ValidateRoot(in.Cert, in.Key, now); err == nil {
		t.Fatal("an intermediate with pathlen 0 was accepted as a root")
	}
}

// TestWeakKeyRefused: an RSA key under 2048 bits is named as too weak.
func TestWeakKeyRefused(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("this Go refuses 1024-bit keys: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weak"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	_, err = ParseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), now)
	want := `invalid CA: certificate "CN=weak" has an RSA 1024-bit key (too weak), which is not supported (use ECDSA P-256/P-384 or RSA 2048/3072/4096)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
