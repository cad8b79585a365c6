package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// TestPrimaryRemoteGolden pins what Istio primary-remote writes: into the
// primary (a sidecar member with a remote), its east-west gateway with
// istiod's ports 15012 and 15017, the istiod-gateway Gateway and istiod-vs
// VirtualService, the remote's remote secret, its MeshInstall settings
// (externalIstiod) and writer rules; into the remote, its own east-west
// gateway and reader (no remote secret: it runs no istiod), the remote
// profile settings of its MeshInstall pointing at the primary's gateway
// address, and its writer rules.
func TestPrimaryRemoteGolden(t *testing.T) {
	sf, err := Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	ft, ok := sf.(mesh.FederationTopology)
	if !ok {
		t.Fatal("Istio's ServiceFederation does not implement mesh.FederationTopology")
	}
	if _, ok := sf.(mesh.PrimaryRemote); !ok {
		t.Fatal("Istio's ServiceFederation does not implement mesh.PrimaryRemote")
	}
	primary := mesh.FederationMember{Name: "east", Network: "net-east", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileSidecar, Remotes: []string{"west"}}
	rem := mesh.FederationMember{Name: "west", Network: "net-west", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileSidecar,
		Primary: "east", PrimaryAddress: "127.96.3.1"}
	installs := []meshv1alpha1.MeshInstall{
		{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1"}},
	}
	var got string
	for _, side := range []struct {
		name string
		m    mesh.FederationMember
		objs []client.Object
	}{
		{"primary east", primary, []client.Object{sf.PeerCredential(primary, rem, []byte("kubeconfig of west"))}},
		{"remote west", rem, nil},
	} {
		objs := append([]client.Object{}, sf.FederationReader(side.m).Objects...)
		objs = append(objs, sf.FederationOutputs(side.m)...)
		objs = append(objs, side.objs...)
		got += "# " + side.name + "\n" + render(t, translation{golden: "federation-primary-remote.istio", objs: objs})
		got += "---\n# namespace labels: " + labelsString(sf.FederationNamespaceLabels(side.m)) + "\n"
		mi, spec, why := ft.TopologyInstall(side.m, installs)
		if why != "" || mi == nil || mi.Name != "istio" {
			t.Fatalf("%s: TopologyInstall: %v %q", side.name, mi, why)
		}
		b, err := yaml.Marshal(map[string]any{"meshInstall": mi.Name, "spec": spec})
		if err != nil {
			t.Fatal(err)
		}
		got += "---\n# MeshInstall settings\n" + string(b)
		namespaced, cluster := sf.FederationWriterRules(side.m, []string{"local"})
		b, err = yaml.Marshal(map[string]any{"namespaced": namespaced, "cluster": cluster})
		if err != nil {
			t.Fatal(err)
		}
		got += "---\n# writer rules\n" + string(b) + "---\n"
	}
	path := filepath.Join("testdata", "federation-primary-remote.istio.golden.yaml")
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
}

// TestPrimaryRemoteRefusals: primary-remote is refused in ambient mode on
// either side, with the message naming the member, its primary and the
// fix; a remote whose primary's gateway has no address yet keeps its
// MeshInstall's settings (mi, no settings); a remote or primary without an
// Istio sidecar MeshInstall gets none; a member of neither kind gets none.
func TestPrimaryRemoteRefusals(t *testing.T) {
	sf, _ := Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	pr := sf.(mesh.PrimaryRemote)
	ft := sf.(mesh.FederationTopology)
	side := func(name, primary string) mesh.FederationMember {
		return mesh.FederationMember{Name: name, Network: "net-" + name, MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileSidecar, Primary: primary}
	}
	amb := func(m mesh.FederationMember) mesh.FederationMember { m.Profile = meshv1alpha1.ProfileAmbient; return m }
	const fix = "Istio does not support primary-remote in ambient mode (ambient multicluster is multi-primary on different networks only); " +
		"remove primary (the member then runs its own istiod), or use profile Sidecar on both"
	cases := []struct {
		name    string
		m, p    mesh.FederationMember
		message string
	}{
		{"sidecar remote of a sidecar primary", side("west", "east"), side("east", ""), ""},
		{"ambient remote", amb(side("west", "east")), side("east", ""), "spec.clusters[west].primary is east, but west runs Istio in ambient mode: " + fix},
		{"ambient primary", side("west", "east"), amb(side("east", "")), "spec.clusters[west].primary is east, which runs Istio in ambient mode: " + fix},
		{"both ambient", amb(side("west", "east")), amb(side("east", "")), "spec.clusters[west].primary is east, but west runs Istio in ambient mode: " + fix},
	}
	for _, c := range cases {
		if got := pr.RemoteRefusal(c.m, c.p); got != c.message {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.message)
		}
	}
	sidecarMI := []meshv1alpha1.MeshInstall{{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio}}}
	ambMI := []meshv1alpha1.MeshInstall{{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Profile: meshv1alpha1.ProfileAmbient}}}
	if mi, spec, why := ft.TopologyInstall(side("west", "east"), sidecarMI); mi == nil || spec != nil || why != "" {
		t.Fatalf("remote without its primary's address: %v %v %q, want the MeshInstall and no settings", mi, spec, why)
	}
	withAddr := side("west", "east")
	withAddr.PrimaryAddress = "gw.example"
	if mi, spec, why := ft.TopologyInstall(withAddr, ambMI); mi != nil || spec != nil || why != "" {
		t.Fatalf("remote without a sidecar MeshInstall: %v %v %q", mi, spec, why)
	}
	if mi, spec, _ := ft.TopologyInstall(withAddr, sidecarMI); mi == nil || !strings.Contains(settings(t, spec), `"remotePilotAddress":"gw.example"`) {
		t.Fatalf("remote with a hostname address: %v %s", mi, settings(t, spec))
	}
	if mi, spec, why := ft.TopologyInstall(side("local", ""), sidecarMI); mi != nil || spec != nil || why != "" {
		t.Fatalf("member of neither kind: %v %v %q", mi, spec, why)
	}
	if objs := sf.FederationOutputs(side("local", "")); len(objs) != 4 {
		t.Fatalf("member without remotes: %d outputs, want the four sidecar east-west objects", len(objs))
	}
}

func settings(t *testing.T, spec map[string]any) string {
	t.Helper()
	b, err := yaml.YAMLToJSON(mustYAML(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
