package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// TestServiceFederationGolden pins what service federation writes into an
// Istio member (reader, east-west gateway, namespace label, a remote
// secret), with and without the gateway (Linkerd's and Cilium's:
// TestLinkerdServiceFederationGolden, TestCiliumClusterMeshGolden).
func TestServiceFederationGolden(t *testing.T) {
	reg := Registry()
	sf, err := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	if why := sf.FederationRefusal(mesh.InstallFacts{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileAmbient}); !strings.Contains(why, "profile Ambient") ||
		!strings.Contains(why, "istio-east-west Gateway on HBONE port 15008") {
		t.Fatalf("ambient refusal %q", why)
	}
	for _, f := range []mesh.InstallFacts{{Provider: meshv1alpha1.ProviderIstio}, {Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileSidecar}} {
		if why := sf.FederationRefusal(f); why != "" {
			t.Fatalf("%+v refused: %s", f, why)
		}
	}
	for name, m := range map[string]mesh.FederationMember{
		"federation-member-gateway.istio": {Name: "east", Network: "net-east", MeshID: "mesh1", EastWestGateway: true},
		"federation-member-flat.istio":    {Name: "east", Namespace: "istio-custom", Network: "flat", MeshID: "mesh1"},
	} {
		t.Run(name, func(t *testing.T) {
			peer := mesh.FederationMember{Name: "west", Network: "net-west", MeshID: "mesh1"}
			objs := append([]client.Object{}, sf.FederationReader(m).Objects...)
			objs = append(objs, sf.FederationOutputs(m)...)
			objs = append(objs, sf.PeerCredential(m, peer, []byte("kubeconfig of west")))
			got := render(t, translation{golden: name, objs: objs})
			got += "---\n# namespace labels: " + labelsString(sf.FederationNamespaceLabels(m)) + "\n"
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

func labelsString(l map[string]string) string {
	var out []string
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	return strings.Join(out, ",")
}
