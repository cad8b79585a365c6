package meshfederation

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

// TestCredentialValid: a held credential is kept only while it points at
// the peer's endpoint with the peer's CA and a token of the peer's reader
// that is not due for renewal.
func TestCredentialValid(t *testing.T) {
	sf, err := providers.Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	jwt := func(sub string, exp time.Time) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(fmt.Appendf(nil, `{"sub":%q,"exp":%d}`, sub, exp.Unix())) + ".sig"
	}
	const reader = "system:serviceaccount:istio-system:meshplane-istio-reader"
	peer := func(server, ca, token string) *svcMember {
		return &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: "east"}}, sf: sf,
			fm: mesh.FederationMember{Name: "east"}, server: server, caData: []byte(ca), token: token}
	}
	held := func(token string) []byte {
		kc, err := kubeconfigFor(peer("https://127.96.0.10:6443", "ca", token))
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	current := peer("https://127.96.0.10:6443", "ca", "")
	for _, tc := range []struct {
		name string
		data []byte
		p    *svcMember
		want bool
	}{
		{"valid for 20 days", held(jwt(reader, now.Add(20*24*time.Hour))), current, true},
		{"due for renewal in 5 days", held(jwt(reader, now.Add(5*24*time.Hour))), current, false},
		{"another ServiceAccount's token", held(jwt("system:serviceaccount:default:admin", now.Add(20*24*time.Hour))), current, false},
		{"the peer moved", held(jwt(reader, now.Add(20*24*time.Hour))), peer("https://127.96.0.11:6443", "ca", ""), false},
		{"the peer's CA changed", held(jwt(reader, now.Add(20*24*time.Hour))), peer("https://127.96.0.10:6443", "other", ""), false},
		{"not a JWT", held("opaque-token"), current, false},
		{"not a kubeconfig", []byte("garbage"), current, false},
	} {
		if got := credentialValid(tc.data, tc.p, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLocalEndpoint: the local member's in-cluster API server address is
// never handed to other clusters; spec.apiServer replaces it.
func TestLocalEndpoint(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	r := &Reconciler{LocalConfig: &rest.Config{Host: "https://10.96.0.1:443", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("ca")}}}
	s := &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: "local"}}}
	r.endpoint(context.Background(), s)
	want := "the API server address of local is the in-cluster address https://10.96.0.1:443, which other clusters cannot reach; set spec.clusters[local].apiServer"
	if s.server != "" || s.serverWhy != want {
		t.Fatalf("server %q why %q", s.server, s.serverWhy)
	}
	s = &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: "local", APIServer: "https://api.west.example:6443"}}}
	r.endpoint(context.Background(), s)
	if s.server != "https://api.west.example:6443" || string(s.caData) != "ca" || s.serverWhy != "" {
		t.Fatalf("server %q ca %q why %q", s.server, s.caData, s.serverWhy)
	}
}
