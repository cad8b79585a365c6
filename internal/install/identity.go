package install

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Lifetimes of generated Linkerd identity certificates.
const (
	// TrustAnchorLifetime is ten years: rotating an anchor is a federation
	// operation (MeshFederation), not a routine renewal.
	TrustAnchorLifetime = 10 * 365 * 24 * time.Hour
	// DefaultIssuerLifetime is one year; the issuer is renewed when a third
	// of its life remains.
	DefaultIssuerLifetime = 365 * 24 * time.Hour
)

// KeyPair is a certificate with its private key, PEM encoded.
type KeyPair struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
	Key             crypto.Signer
}

// GenerateTrustAnchor makes a self-signed ECDSA P-256 root CA, as Linkerd
// requires (root.linkerd.cluster.local).
func GenerateTrustAnchor(now time.Time) (*KeyPair, error) {
	return issue(nil, "root.linkerd.cluster.local", now, TrustAnchorLifetime, 1)
}

// GenerateIssuer makes an ECDSA P-256 intermediate CA signed by anchor
// (identity.linkerd.cluster.local), clamped to the anchor's lifetime.
func GenerateIssuer(anchor *KeyPair, now time.Time, lifetime time.Duration) (*KeyPair, error) {
	if lifetime <= 0 {
		lifetime = DefaultIssuerLifetime
	}
	return issue(anchor, "identity.linkerd.cluster.local", now, lifetime, 0)
}

func issue(parent *KeyPair, cn string, now time.Time, lifetime time.Duration, maxPath int) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if parent != nil && notAfter.After(parent.Cert.NotAfter) {
		notAfter = parent.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Minute), NotAfter: notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: maxPath, MaxPathLenZero: maxPath == 0,
	}
	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		Cert:    cert, Key: key,
	}, nil
}

// ParseKeyPair parses a certificate and its key and checks they match.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("no PEM private key found")
	}
	var key crypto.Signer
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		var k any
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err == nil {
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, errors.New("private key cannot sign")
			}
			key = s
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("private key does not match the certificate")
	}
	return &KeyPair{CertPEM: certPEM, KeyPEM: keyPEM, Cert: cert, Key: key}, nil
}

// ParseCerts parses every certificate of a PEM bundle.
func ParseCerts(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// VerifyIssuer checks that issuer is a currently valid CA that chains to
// one of the anchors and may sign workload certificates.
func VerifyIssuer(issuer *KeyPair, anchors []*x509.Certificate, now time.Time) error {
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

// NeedsRenewal reports whether a certificate has less than a third of its
// lifetime left.
func NeedsRenewal(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Sub(now) < life/3
}
