package trust

import (
	"bytes"
	"crypto/x509"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshplane/meshplane/internal/mesh"
)

// Bundle is an ordered set of root certificates without duplicates.
type Bundle struct {
	certs []*x509.Certificate
	seen  map[string]bool
}

// MergeBundles returns the union of the certificates of every input, in
// first-seen order, de-duplicated by fingerprint.
func MergeBundles(inputs ...[]*x509.Certificate) *Bundle {
	b := &Bundle{seen: map[string]bool{}}
	for _, in := range inputs {
		b.Add(in...)
	}
	return b
}

// Add appends certificates not yet in the bundle.
func (b *Bundle) Add(certs ...*x509.Certificate) {
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	for _, c := range certs {
		if c == nil {
			continue
		}
		fp := Fingerprint(c)
		if !b.seen[fp] {
			b.seen[fp] = true
			b.certs = append(b.certs, c)
		}
	}
}

// Certs returns the bundle's certificates in order.
func (b *Bundle) Certs() []*x509.Certificate { return b.certs }

// Contains reports whether the bundle holds c.
func (b *Bundle) Contains(c *x509.Certificate) bool { return b.seen[Fingerprint(c)] }

// Fingerprints returns the certificates' fingerprints in order.
func (b *Bundle) Fingerprints() []string {
	out := make([]string, len(b.certs))
	for i, c := range b.certs {
		out[i] = Fingerprint(c)
	}
	return out
}

// PEM returns the concatenated PEM blocks.
func (b *Bundle) PEM() []byte {
	var buf bytes.Buffer
	for _, c := range b.certs {
		buf.Write(EncodeCert(c))
	}
	return buf.Bytes()
}

// Pool returns the bundle as an x509.CertPool for verification.
func (b *Bundle) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range b.certs {
		p.AddCert(c)
	}
	return p
}

// Material is what one cluster receives: its issuer (intermediate) CA, the
// root that signed it, and the bundle of roots it trusts.
type Material struct {
	// Issuer is the cluster's intermediate.
	Issuer *CA
	// IssuerRoot is the root that signed Issuer.
	IssuerRoot *x509.Certificate
	// Bundle is the set of trusted roots; it must contain IssuerRoot.
	Bundle *Bundle
}

// Layout is the data of the objects a mesh reads, keyed as its TrustTarget
// says.
type Layout struct {
	// SecretType is the issuer Secret's type.
	SecretType corev1.SecretType
	// Secret is the issuer Secret's data.
	Secret map[string][]byte
	// ConfigMap is the bundle ConfigMap's data; nil when the mesh has none.
	ConfigMap map[string]string
}

// LayoutFor places m in the keys of t:
//
//   - CertKey: the intermediate; Cilium's ca.crt (no RootKey, no ChainKey)
//     is followed by the bundle, since ClusterMesh peers trust that file.
//   - KeyKey: the intermediate's key.
//   - RootKey (Istio root-cert.pem, Linkerd ca.crt): the bundle.
//   - ChainKey (Istio cert-chain.pem): intermediate then its root (just
//     the issuer when it is self-signed, as Istio's own CA is).
//   - BundleConfigMapKey (Linkerd ca-bundle.crt): the bundle.
func LayoutFor(t mesh.TrustTarget, m Material) Layout {
	l := Layout{SecretType: t.IssuerSecretType, Secret: map[string][]byte{}}
	bundle := m.Bundle.PEM()
	if t.CertKey != "" {
		cert := append([]byte(nil), m.Issuer.CertPEM...)
		if t.RootKey == "" && t.ChainKey == "" && t.BundleConfigMap == "" {
			cert = append(cert, bundle...)
		}
		l.Secret[t.CertKey] = cert
	}
	if t.KeyKey != "" {
		l.Secret[t.KeyKey] = m.Issuer.KeyPEM
	}
	if t.RootKey != "" {
		l.Secret[t.RootKey] = bundle
	}
	if t.ChainKey != "" {
		chain := append([]byte(nil), m.Issuer.CertPEM...)
		if Fingerprint(m.IssuerRoot) != m.Issuer.Fingerprint() { // a self-signed issuer is its own chain
			chain = append(chain, EncodeCert(m.IssuerRoot)...)
		}
		l.Secret[t.ChainKey] = chain
	}
	if t.BundleConfigMap != "" {
		l.ConfigMap = map[string]string{t.BundleConfigMapKey: string(bundle)}
	}
	return l
}
