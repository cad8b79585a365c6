package trust

import (
	"crypto/rand"
	"crypto/x509"
	"net"
	"slices"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// LeafOptions name and size an end-entity certificate (a TLS server or
// client certificate) signed by a cluster's issuer.
type LeafOptions struct {
	// CommonName of the subject (a TLS client's user name, for etcd).
	CommonName string
	// DNSNames and IPAddresses are the subject alternative names.
	DNSNames    []string
	IPAddresses []net.IP
	// Usages are the extended key usages (server and/or client auth).
	Usages []x509.ExtKeyUsage
	// KeyType is the leaf's key; ECDSA P-256 when empty.
	KeyType meshv1alpha1.KeyType
}

// IssueLeaf signs an end-entity certificate with issuer, valid until the
// issuer expires: a leaf is renewed with its issuer (and whenever it is no
// longer signed by the current one), never on a schedule of its own.
func IssueLeaf(issuer *CA, o LeafOptions, now time.Time) (*CA, error) {
	if err := ValidateCA(issuer.Cert, issuer.Key, now); err != nil {
		return nil, err
	}
	kt := o.KeyType
	if kt == "" {
		kt = meshv1alpha1.KeyTypeECDSAP256
	}
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-backdate).Truncate(time.Second)
	if notBefore.Before(issuer.Cert.NotBefore) {
		notBefore = issuer.Cert.NotBefore
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               subject(o.CommonName, ""),
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPAddresses,
		NotBefore:             notBefore,
		NotAfter:              issuer.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           o.Usages,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Cert, key.Public(), issuer.Key)
	if err != nil {
		return nil, err
	}
	return newCA(der, key)
}

// LeafMatches reports whether leaf is what o asks for and still good under
// issuer: signed by it, expiring with it (so it is renewed when the issuer
// is), valid now, with the same subject name, alternative names and
// extended key usages.
func LeafMatches(leaf, issuer *x509.Certificate, o LeafOptions, now time.Time) bool {
	if leaf.IsCA || !SignedBy(leaf, issuer) || !leaf.NotAfter.Equal(issuer.NotAfter) || now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return false
	}
	if leaf.Subject.CommonName != o.CommonName || !slices.Equal(leaf.DNSNames, o.DNSNames) || !slices.Equal(leaf.ExtKeyUsage, o.Usages) {
		return false
	}
	return slices.EqualFunc(leaf.IPAddresses, o.IPAddresses, func(a, b net.IP) bool { return a.Equal(b) })
}
