package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Defaults of the API, applied when a field is unset.
const (
	// DefaultRootCommonName is the subject CN of a generated root.
	DefaultRootCommonName = "meshplane-root-ca"
	// DefaultRootLifetime is a generated root's lifetime (10 years).
	DefaultRootLifetime = 87600 * time.Hour
	// DefaultIntermediateLifetime is an intermediate's lifetime (1 year).
	DefaultIntermediateLifetime = 8760 * time.Hour
	// DefaultRenewBefore is how long before expiry an intermediate renews.
	DefaultRenewBefore = 720 * time.Hour
	// backdate absorbs clock skew between clusters.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: its certificate and private key, with
// their PEM encodings.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// Fingerprint is the CA certificate's SHA-256 fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Fingerprint returns the hex SHA-256 of the DER certificate.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// RootOptions size a generated root.
type RootOptions struct {
	CommonName   string
	Organization string
	Lifetime     time.Duration
	KeyType      meshv1alpha1.KeyType
}

// RootOptionsFrom reads the API's GeneratedRoot, applying defaults.
func RootOptionsFrom(g *meshv1alpha1.GeneratedRoot) RootOptions {
	o := RootOptions{CommonName: DefaultRootCommonName, Lifetime: DefaultRootLifetime, KeyType: meshv1alpha1.KeyTypeECDSAP256}
	if g == nil {
		return o
	}
	if g.CommonName != "" {
		o.CommonName = g.CommonName
	}
	o.Organization = g.Organization
	if g.Lifetime != nil && g.Lifetime.Duration > 0 {
		o.Lifetime = g.Lifetime.Duration
	}
	if g.KeyType != "" {
		o.KeyType = g.KeyType
	}
	return o
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func subject(cn, org string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

// GenerateRoot creates a self-signed root CA valid from now (less a few
// minutes for clock skew) for o.Lifetime.
func GenerateRoot(o RootOptions, now time.Time) (*CA, error) {
	if o.CommonName == "" {
		o.CommonName = DefaultRootCommonName
	}
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultRootLifetime
	}
	key, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               subject(o.CommonName, o.Organization),
		NotBefore:             now.Add(-backdate).Truncate(time.Second),
		NotAfter:              now.Add(o.Lifetime).Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return newCA(der, key)
}

func newCA(der []byte, key crypto.Signer) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCert(cert), KeyPEM: keyPEM}, nil
}

// InvalidCAError says why a supplied CA cannot be used. It is terminal:
// only a new certificate fixes it.
type InvalidCAError struct {
	// Problem is the precise reason.
	Problem string
}

// Error explains the problem.
func (e *InvalidCAError) Error() string { return "invalid CA: " + e.Problem }

// StalledReason makes the error terminal with reason InvalidCertificate.
func (e *InvalidCAError) StalledReason() string { return meshv1alpha1.InvalidCertificateReason }

func invalid(format string, args ...any) error {
	return &InvalidCAError{Problem: fmt.Sprintf(format, args...)}
}

// ParseCA reads a CA from PEM certificate and key data, as in a
// kubernetes.io/tls Secret. The first certificate of certPEM is the CA (a
// cert-manager Secret may carry a chain in tls.crt); it is validated with
// ValidateCA.
func ParseCA(certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, invalid("certificate: %v", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, invalid("private key: %v", err)
	}
	if err := ValidateCA(certs[0], key, now); err != nil {
		return nil, err
	}
	return newCA(certs[0].Raw, key)
}

// ValidateCA checks that cert can act as a CA at now with key: it is a CA
// (basic constraints), may sign certificates (key usage), is within its
// validity period, and key is its private key. The error names the first
// problem found.
func ValidateCA(cert *x509.Certificate, key crypto.Signer, now time.Time) error {
	name := cert.Subject.String()
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return invalid("certificate %q is not a CA (basic constraints CA:TRUE missing); supply a CA certificate", name)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return invalid("certificate %q may not sign certificates (key usage keyCertSign missing)", name)
	}
	if now.Before(cert.NotBefore) {
		return invalid("certificate %q is not valid before %s", name, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if !now.Before(cert.NotAfter) {
		return invalid("certificate %q expired at %s", name, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if key != nil && !publicKeysEqual(cert.PublicKey, key.Public()) {
		return invalid("private key does not match certificate %q", name)
	}
	if KeyTypeOf(cert.PublicKey) == "" {
		return invalid("certificate %q has %s, which is not supported (use ECDSA P-256/P-384 or RSA 2048/3072/4096)", name, describeKey(cert.PublicKey))
	}
	return nil
}

// describeKey names a public key's type and size, e.g. "an RSA 1024-bit
// key (too weak)".
func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		weak := ""
		if k.N.BitLen() < 2048 {
			weak = " (too weak)"
		}
		return fmt.Sprintf("an RSA %d-bit key%s", k.N.BitLen(), weak)
	case *ecdsa.PublicKey:
		return "an ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T key", pub)
}

// ValidateRoot checks, beyond ValidateCA, what a root that Meshplane signs
// per-cluster intermediates with needs: a path length constraint that
// allows one CA below it. A root with pathlen 0 would be accepted by the
// parser and then make every workload chain (root, intermediate,
// workload) fail to verify.
func ValidateRoot(cert *x509.Certificate, key crypto.Signer, now time.Time) error {
	if err := ValidateCA(cert, key, now); err != nil {
		return err
	}
	if cert.MaxPathLen == 0 && cert.MaxPathLenZero {
		return invalid("certificate %q has basic constraints pathlen:0, so it may sign only end-entity certificates, but Meshplane signs a per-cluster intermediate CA with it "+
			"and every workload chain would fail to verify; issue the root without a path length constraint or with pathlen >= 1 "+
			"(openssl: basicConstraints=critical,CA:TRUE; cert-manager: isCA: true without a pathlen)", cert.Subject.String())
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// IntermediateOptions size and name a per-cluster intermediate.
type IntermediateOptions struct {
	// CommonName of the intermediate's subject.
	CommonName string
	// Organization of the subject.
	Organization string
	// DNSNames, if the mesh checks the issuer's name (Linkerd:
	// identity.linkerd.<trust domain>).
	DNSNames []string
	// TrustDomain adds a SPIFFE URI SAN spiffe://<trust domain>.
	TrustDomain string
	Lifetime    time.Duration
	KeyType     meshv1alpha1.KeyType
}

// IssueIntermediate signs a new intermediate CA with root. Its lifetime is
// clamped to the root's NotAfter; its path length is 0, so it can sign
// workload certificates only.
func IssueIntermediate(root *CA, o IntermediateOptions, now time.Time) (*CA, error) {
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultIntermediateLifetime
	}
	if err := ValidateCA(root.Cert, root.Key, now); err != nil {
		return nil, err
	}
	key, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(o.Lifetime).Truncate(time.Second)
	if notAfter.After(root.Cert.NotAfter) {
		notAfter = root.Cert.NotAfter
	}
	notBefore := now.Add(-backdate).Truncate(time.Second)
	if notBefore.Before(root.Cert.NotBefore) {
		notBefore = root.Cert.NotBefore
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               subject(o.CommonName, o.Organization),
		DNSNames:              o.DNSNames,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	if o.TrustDomain != "" {
		tmpl.URIs = []*url.URL{{Scheme: "spiffe", Host: o.TrustDomain}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, key.Public(), root.Key)
	if err != nil {
		return nil, err
	}
	return newCA(der, key)
}

// SignedBy reports whether cert's signature verifies with issuer's key.
func SignedBy(cert, issuer *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, issuer.RawSubject) && cert.CheckSignatureFrom(issuer) == nil
}

// NeedsRenewal reports whether cert expires within renewBefore of now, or
// is not valid yet or any more.
func NeedsRenewal(cert *x509.Certificate, renewBefore time.Duration, now time.Time) bool {
	return now.Before(cert.NotBefore) || !now.Add(renewBefore).Before(cert.NotAfter)
}

// RenewAt is when NeedsRenewal turns true for cert.
func RenewAt(cert *x509.Certificate, renewBefore time.Duration) time.Time {
	return cert.NotAfter.Add(-renewBefore)
}

// IssuerOf returns the certificate of roots that signed cert, or an error.
func IssuerOf(cert *x509.Certificate, roots []*x509.Certificate) (*x509.Certificate, error) {
	for _, r := range roots {
		if SignedBy(cert, r) {
			return r, nil
		}
	}
	return nil, errors.New("no root in the bundle signed " + cert.Subject.String())
}
