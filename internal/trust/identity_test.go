package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

var linkerdNames = IdentityNames{Anchor: "root.linkerd.cluster.local", Issuer: "identity.linkerd.cluster.local"}

func TestMeshIdentity(t *testing.T) {
	now := time.Now()
	anchor, err := GenerateAnchor(linkerdNames, now)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := GenerateIssuer(anchor, linkerdNames, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := issuer.Key.Public().(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("issuer key is not P-256: %T", issuer.Key.Public())
	}
	if !issuer.Cert.IsCA || issuer.Cert.MaxPathLen != 0 || !issuer.Cert.MaxPathLenZero {
		t.Fatalf("issuer must be a CA with path length 0")
	}
	if anchor.Cert.Subject.CommonName != linkerdNames.Anchor || issuer.Cert.Subject.CommonName != linkerdNames.Issuer {
		t.Fatalf("subjects: %s, %s", anchor.Cert.Subject, issuer.Cert.Subject)
	}
	parsed, err := ParseKeyPair(issuer.CertPEM, issuer.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := ParseCerts(anchor.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyIssuer(parsed, anchors, now); err != nil {
		t.Fatalf("generated issuer does not verify: %v", err)
	}
	other, _ := GenerateAnchor(linkerdNames, now)
	if err := VerifyIssuer(parsed, []*x509.Certificate{other.Cert}, now); err == nil || !strings.Contains(err.Error(), "does not chain") {
		t.Fatalf("issuer verified against a foreign anchor: %v", err)
	}
	if _, err := ParseKeyPair(issuer.CertPEM, anchor.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key accepted: %v", err)
	}
	if err := VerifyIssuer(parsed, anchors, now.Add(2*DefaultIntermediateLifetime)); err == nil {
		t.Fatal("expired issuer accepted")
	}
	if IssuerStale(parsed, anchor, now) || !IssuerStale(parsed, anchor, now.Add(DefaultIntermediateLifetime*3/4)) {
		t.Fatal("renewal at a third of the lifetime left")
	}
	if !IssuerStale(parsed, other, now) {
		t.Fatal("an issuer of another anchor is not stale")
	}
	long, _ := GenerateIssuer(anchor, linkerdNames, 20*365*24*time.Hour, now)
	if long.Cert.NotAfter.After(anchor.Cert.NotAfter) {
		t.Fatal("issuer outlives its anchor")
	}
}
