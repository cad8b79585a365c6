package meshfederation_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/meshplane/meshplane/internal/trust"
)

// leafCert issues a certificate that is not a CA.
func leafCert(t *testing.T, ca *trust.CA) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := trust.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "not-a-ca"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	k, _ := trust.EncodeKey(key)
	return trust.EncodeCert(c), k
}
