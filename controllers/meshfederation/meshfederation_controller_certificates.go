package meshfederation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/trust"
)

// federationCertificates returns the certificate Secrets member s's mesh
// connects to its peers with (mesh.FederationCertificates), signed by the
// issuer the trust part wrote into the member: tls.crt is the certificate
// followed by the issuer, ca.crt the bundle the member trusts, so a peer
// holding only the root verifies it. A certificate the federation wrote
// that still matches under the current issuer is kept (no write on a
// no-op); a new issuer (renewal, rotation) re-issues every one. They are
// written with the member's other service federation outputs, in its
// inventory.
func (r *Reconciler) federationCertificates(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, now time.Time) ([]client.Object, error) {
	fc, ok := s.sf.(mesh.FederationCertificates)
	if !ok {
		return nil, nil
	}
	m := s.m
	if m.issuer == nil {
		why := "it does not hold the federation's trust material yet"
		if m.err != nil {
			why = m.err.Error()
		}
		return nil, fmt.Errorf("cluster %s: its %s federation certificates are signed by the issuer the federation writes into it (Secret %s/%s), which it does not hold: %s",
			m.spec.Name, m.spec.Provider, m.target.Namespace, m.target.IssuerSecret, why)
	}
	var out []client.Object
	for _, c := range fc.FederationCertificates(s.fm, s.gatewaySvc) {
		o := trust.LeafOptions{CommonName: c.CommonName, DNSNames: c.DNSNames, IPAddresses: c.IPAddresses, Usages: c.Usages}
		leaf, err := heldLeaf(ctx, fed, m, c, o, now)
		if err != nil {
			return nil, err
		}
		if leaf == nil {
			if leaf, err = trust.IssueLeaf(m.issuer, o, now); err != nil {
				return nil, fmt.Errorf("cluster %s: issuing the certificate of Secret %s/%s: %w", m.spec.Name, c.Namespace, c.Secret, err)
			}
			r.event(fed, corev1.EventTypeNormal, "CertificateIssued", "Apply", "cluster %s: issued %s (signed by intermediate %s) for Secret %s/%s",
				m.spec.Name, c.CommonName, trust.Fingerprint(m.issuer.Cert)[:12], c.Namespace, c.Secret)
		}
		chain := append(append([]byte{}, leaf.CertPEM...), m.issuer.CertPEM...)
		out = append(out, secret(c.Namespace, c.Secret, corev1.SecretTypeTLS, map[string][]byte{
			corev1.TLSCertKey: chain, corev1.TLSPrivateKeyKey: leaf.KeyPEM, corev1.ServiceAccountRootCAKey: m.bundlePEM,
		}))
	}
	return out, nil
}

// heldLeaf returns the certificate the federation wrote into Secret c when
// it still matches o under the member's issuer; nil when a new one is due.
func heldLeaf(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member, c mesh.Certificate, o trust.LeafOptions, now time.Time) (*trust.CA, error) {
	sec, err := getSecret(ctx, m.client, c.Namespace, c.Secret)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: reading Secret %s/%s: %w", m.spec.Name, c.Namespace, c.Secret, err)
	}
	if !owned(sec, fed.Name) {
		return nil, nil
	}
	return matchingLeaf(sec, m.issuer.Cert, o, now), nil
}

// matchingLeaf parses the certificate and key of a held Secret; nil when
// they are damaged or no longer match (both are re-issued).
func matchingLeaf(sec *corev1.Secret, issuer *x509.Certificate, o trust.LeafOptions, now time.Time) *trust.CA {
	held, err := trust.ParseKeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil || !trust.LeafMatches(held.Cert, issuer, o, now) {
		return nil
	}
	held.CertPEM = trust.EncodeCert(held.Cert)
	return held
}
