package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// GenerateKey returns a new private key of type kt (ECDSA P-256 when empty).
func GenerateKey(kt meshv1alpha1.KeyType) (crypto.Signer, error) {
	switch kt {
	case "", meshv1alpha1.KeyTypeECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case meshv1alpha1.KeyTypeECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case meshv1alpha1.KeyTypeRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case meshv1alpha1.KeyTypeRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case meshv1alpha1.KeyTypeRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q", kt)
}

// KeyTypeOf returns the KeyType of a public key, or "" when it is none of
// the supported types.
func KeyTypeOf(pub crypto.PublicKey) meshv1alpha1.KeyType {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return meshv1alpha1.KeyTypeECDSAP256
		case elliptic.P384():
			return meshv1alpha1.KeyTypeECDSAP384
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return meshv1alpha1.KeyTypeRSA2048
		case 3072:
			return meshv1alpha1.KeyTypeRSA3072
		case 4096:
			return meshv1alpha1.KeyTypeRSA4096
		}
	}
	return ""
}

// EncodeKey returns key as a PKCS#8 PEM block ("PRIVATE KEY").
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads the first private key in PEM data: PKCS#8, PKCS#1 (RSA)
// or SEC 1 (EC), as cert-manager, openssl and step write them.
func ParseKey(data []byte) (crypto.Signer, error) {
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing PKCS#8 private key: %w", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, errors.New("private key cannot sign")
			}
			return s, nil
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(b.Bytes)
		}
	}
	return nil, errors.New("no PEM private key found")
}

// EncodeCert returns cert as a PEM block.
func EncodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// ParseCerts reads every CERTIFICATE block of PEM data, in order. Other
// blocks are skipped. No certificate is an error.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}
