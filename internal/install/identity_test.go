package install

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestLinkerdIdentity(t *testing.T) {
	now := time.Now()
	anchor, err := GenerateTrustAnchor(now)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := GenerateIssuer(anchor, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := issuer.Key.Public().(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("issuer key is not P-256: %T", issuer.Key.Public())
	}
	if !issuer.Cert.IsCA || issuer.Cert.MaxPathLen != 0 || !issuer.Cert.MaxPathLenZero {
		t.Fatalf("issuer must be a CA with path length 0")
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
	other, _ := GenerateTrustAnchor(now)
	if err := VerifyIssuer(parsed, []*x509.Certificate{other.Cert}, now); err == nil || !strings.Contains(err.Error(), "does not chain") {
		t.Fatalf("issuer verified against a foreign anchor: %v", err)
	}
	if _, err := ParseKeyPair(issuer.CertPEM, anchor.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key accepted: %v", err)
	}
	if err := VerifyIssuer(parsed, anchors, now.Add(2*DefaultIssuerLifetime)); err == nil {
		t.Fatal("expired issuer accepted")
	}
	if NeedsRenewal(issuer.Cert, now) || !NeedsRenewal(issuer.Cert, now.Add(DefaultIssuerLifetime*3/4)) {
		t.Fatal("renewal at a third of the lifetime left")
	}
	short, _ := GenerateIssuer(anchor, now, 20*365*24*time.Hour)
	if short.Cert.NotAfter.After(anchor.Cert.NotAfter) {
		t.Fatal("issuer outlives its anchor")
	}
}
