package trust

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// A mesh identity is the trust anchor and issuer a MeshInstall hands to a
// mesh's charts (Linkerd): generated here, or read from Secrets the user
// names. It uses the same generation, parsing and renewal rule as a
// MeshFederation's roots and intermediates.

// IdentityNames are the subject common names of a mesh's generated trust
// anchor and issuer (Linkerd: root.linkerd.cluster.local and
// identity.linkerd.cluster.local).
type IdentityNames struct {
	Anchor, Issuer string
}

// GenerateAnchor makes a self-signed ECDSA P-256 trust anchor valid for
// DefaultRootLifetime: rotating an anchor is a federation operation
// (MeshFederation), not a routine renewal.
func GenerateAnchor(n IdentityNames, now time.Time) (*CA, error) {
	return GenerateRoot(RootOptions{CommonName: n.Anchor, Lifetime: DefaultRootLifetime, KeyType: meshv1alpha1.KeyTypeECDSAP256}, now)
}

// GenerateIssuer makes an ECDSA P-256 issuer signed by anchor, valid for
// lifetime (DefaultIntermediateLifetime when 0) and clamped to the
// anchor's lifetime, with path length 0.
func GenerateIssuer(anchor *CA, n IdentityNames, lifetime time.Duration, now time.Time) (*CA, error) {
	return IssueIntermediate(anchor, IntermediateOptions{CommonName: n.Issuer, Lifetime: lifetime, KeyType: meshv1alpha1.KeyTypeECDSAP256}, now)
}

// ParseKeyPair reads a certificate (the first of certPEM) and its private
// key and checks that they match. Unlike ParseCA it does not judge the
// validity period, so an expired generated issuer is renewed rather than
// reported as damaged.
func ParseKeyPair(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(certs[0].PublicKey, key.Public()) {
		return nil, errors.New("private key does not match the certificate")
	}
	return &CA{Cert: certs[0], Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// VerifyIssuer checks that issuer is a currently valid CA that chains to
// one of the anchors and may sign workload certificates.
func VerifyIssuer(issuer *CA, anchors []*x509.Certificate, now time.Time) error {
	if !issuer.Cert.IsCA {
		return errors.New("the issuer certificate is not a CA (basicConstraints CA:TRUE is required)")
	}
	if now.After(issuer.Cert.NotAfter) {
		return fmt.Errorf("the issuer certificate expired at %s", issuer.Cert.NotAfter.Format(time.RFC3339))
	}
	pool := x509.NewCertPool()
	for _, a := range anchors {
		pool.AddCert(a)
	}
	if _, err := issuer.Cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the issuer does not chain to the trust anchor: %w", err)
	}
	return nil
}

// RenewBefore is the renewal rule of a certificate Meshplane generated for
// a mesh's identity: renew when a third of its lifetime remains
// (NeedsRenewal with this margin).
func RenewBefore(cert *x509.Certificate) time.Duration {
	return cert.NotAfter.Sub(cert.NotBefore) / 3
}

// IssuerStale reports whether a generated issuer must be issued again: it
// is due for renewal (RenewBefore) or no longer chains to anchor.
func IssuerStale(issuer, anchor *CA, now time.Time) bool {
	return NeedsRenewal(issuer.Cert, RenewBefore(issuer.Cert), now) || VerifyIssuer(issuer, []*x509.Certificate{anchor.Cert}, now) != nil
}
