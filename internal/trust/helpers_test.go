package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"testing"
)

func mustECKey(t *testing.T, ca *CA) *ecdsa.PrivateKey {
	t.Helper()
	k, ok := ca.Key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("key is %T", ca.Key)
	}
	return k
}

func mustRSA(t *testing.T, k crypto.Signer) *rsa.PrivateKey {
	t.Helper()
	r, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("key is %T", k)
	}
	return r
}
