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

// TestAmbientFederationGolden pins what ambient multi-network federation
// writes into an Istio ambient member: the reader, the istio-east-west
// Gateway (HBONE 15008, TLS Terminate ISTIO_MUTUAL), a remote secret, the
// network label, the topology settings of its MeshInstall and the writer
// rules.
func TestAmbientFederationGolden(t *testing.T) {
	sf, err := Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	ft, ok := sf.(mesh.FederationTopology)
	if !ok {
		t.Fatal("Istio's ServiceFederation does not implement mesh.FederationTopology")
	}
	m := mesh.FederationMember{Name: "east", Network: "net-east", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileAmbient}
	peer := mesh.FederationMember{Name: "west", Network: "net-west", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileAmbient}
	objs := append([]client.Object{}, sf.FederationReader(m).Objects...)
	objs = append(objs, sf.FederationOutputs(m)...)
	objs = append(objs, sf.PeerCredential(m, peer, []byte("kubeconfig of west")))
	got := render(t, translation{golden: "federation-member-ambient.istio", objs: objs})
	got += "---\n# namespace labels: " + labelsString(sf.FederationNamespaceLabels(m)) + "\n"
	installs := []meshv1alpha1.MeshInstall{
		{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient}},
	}
	mi, spec, why := ft.TopologyInstall(m, installs)
	if why != "" || mi == nil || mi.Name != "istio" {
		t.Fatalf("TopologyInstall: %v %q", mi, why)
	}
	b, err := yaml.Marshal(map[string]any{"meshInstall": mi.Name, "spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	got += "---\n# MeshInstall settings\n" + string(b)
	namespaced, cluster := sf.FederationWriterRules(m, []string{"west"})
	b, err = yaml.Marshal(map[string]any{"namespaced": namespaced, "cluster": cluster})
	if err != nil {
		t.Fatal(err)
	}
	got += "---\n# writer rules\n" + string(b)
	path := filepath.Join("testdata", "federation-member-ambient.istio.golden.yaml")
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

// TestAmbientFederationRefusals: below 1.27 an ambient member is refused
// naming its version; from 1.27 it federates; a sidecar member gets no
// settings; an ambient member without an east-west gateway, an
// ambient/sidecar pair and two ambient members on one network are refused.
func TestAmbientFederationRefusals(t *testing.T) {
	sf, _ := Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	ft := sf.(mesh.FederationTopology)
	amb := func(v string) mesh.InstallFacts {
		return mesh.InstallFacts{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileAmbient, Version: v}
	}
	want := "MeshInstall istio installs Istio 1.26.3 with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
		"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"
	if got := sf.FederationRefusal(amb("1.26.3")); got != want {
		t.Fatalf("1.26.3: %q", got)
	}
	for _, v := range []string{"1.27.0", "1.27.0-beta.1", "v1.28.1", "1.30.0"} {
		if got := sf.FederationRefusal(amb(v)); got != "" {
			t.Fatalf("%s refused: %s", v, got)
		}
	}
	if got := sf.FederationRefusal(amb("")); !strings.Contains(got, "(version unknown)") {
		t.Fatalf("unknown version: %q", got)
	}
	sidecarMI := []meshv1alpha1.MeshInstall{{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1"}}}
	side := mesh.FederationMember{Name: "local", Network: "net-local", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileSidecar}
	if mi, spec, why := ft.TopologyInstall(side, sidecarMI); mi != nil || spec != nil || why != "" {
		t.Fatalf("sidecar member: %v %v %q", mi, spec, why)
	}
	if objs := sf.FederationOutputs(side); len(objs) != 4 {
		t.Fatalf("sidecar outputs %d, want the four sidecar east-west objects", len(objs))
	}
	ambMI := []meshv1alpha1.MeshInstall{{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient}}}
	flat := mesh.FederationMember{Name: "east", Network: "flat", MeshID: "mesh1", Profile: meshv1alpha1.ProfileAmbient}
	want = "MeshInstall istio installs Istio with profile Ambient and spec.services.eastWestGateway is false: Istio supports ambient multicluster on different networks only, " +
		"through an istio-east-west gateway on HBONE port 15008; remove spec.services.eastWestGateway (or set it true), or use profile Sidecar for a flat network"
	if _, _, why := ft.TopologyInstall(flat, ambMI); why != want {
		t.Fatalf("ambient without gateway: %q", why)
	}
	east := mesh.FederationMember{Name: "east", Network: "net-east", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileAmbient}
	west := mesh.FederationMember{Name: "west", Network: "net-west", MeshID: "mesh1", EastWestGateway: true, Profile: meshv1alpha1.ProfileAmbient}
	if why := ft.PairRefusal(east, west); why != "" {
		t.Fatalf("ambient pair on two networks refused: %s", why)
	}
	if why := ft.PairRefusal(side, mesh.FederationMember{Name: "west", Network: "net-west"}); why != "" {
		t.Fatalf("sidecar pair refused: %s", why)
	}
	want = "east runs Istio in ambient mode and local in sidecar mode: Istio does not federate services between ambient and sidecar clusters " +
		"(an ambient east-west gateway speaks HBONE on port 15008, a sidecar one mTLS on 15443); they share trust only. Use the same profile (spec.profile of their MeshInstalls) on both"
	if a, b := ft.PairRefusal(east, side), ft.PairRefusal(side, east); a != want || b != want {
		t.Fatalf("mixed pair:\n%q\n%q", a, b)
	}
	west.Network = "net-east"
	want = "east and west both run Istio in ambient mode on network net-east: Istio supports ambient multicluster on different networks only " +
		"(single-network ambient is untested upstream); give them different spec.clusters[].network"
	if a, b := ft.PairRefusal(east, west), ft.PairRefusal(west, east); a != want || b != want {
		t.Fatalf("one-network ambient pair:\n%q\n%q", a, b)
	}
}
