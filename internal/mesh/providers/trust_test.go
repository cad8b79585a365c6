package providers

import (
	"reflect"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// TestFederationTrust: what a MeshFederation needs of each mesh — the
// issuer's name, the self-signed CA, the pods whose certificates roll.
func TestFederationTrust(t *testing.T) {
	reg := Registry()
	for _, tc := range []struct {
		provider     meshv1alpha1.Provider
		trustDomain  string
		name         mesh.IntermediateName
		selfSigned   string
		podSelectors int
	}{
		{meshv1alpha1.ProviderIstio, "east.example", mesh.IntermediateName{CommonName: "meshplane-intermediate-east", TrustDomain: "east.example"},
			"istio-system/istio-ca-secret", 4},
		// Linkerd's identity controller checks the issuer's name; no SPIFFE URI.
		{meshv1alpha1.ProviderLinkerd, "", mesh.IntermediateName{CommonName: "identity.linkerd.cluster.local",
			DNSNames: []string{"identity.linkerd.cluster.local"}}, "", 1},
		{meshv1alpha1.ProviderLinkerd, "prod.example", mesh.IntermediateName{CommonName: "identity.linkerd.prod.example",
			DNSNames: []string{"identity.linkerd.prod.example"}}, "", 1},
		{meshv1alpha1.ProviderCilium, "", mesh.IntermediateName{CommonName: "meshplane-clustermesh-ca-east"}, "kube-system/cilium-ca", 2},
	} {
		w, err := reg.FederationTrust(tc.provider)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.IntermediateName("east", tc.trustDomain); !reflect.DeepEqual(got, tc.name) {
			t.Errorf("%s: IntermediateName = %+v, want %+v", tc.provider, got, tc.name)
		}
		got := ""
		if sc, ok := w.SelfSignedCA(""); ok {
			got = sc.Namespace + "/" + sc.Secret
		}
		if got != tc.selfSigned {
			t.Errorf("%s: SelfSignedCA = %q, want %q", tc.provider, got, tc.selfSigned)
		}
		if n := len(w.CertificatePods()); n != tc.podSelectors {
			t.Errorf("%s: %d certificate pod selectors, want %d", tc.provider, n, tc.podSelectors)
		}
	}
}
