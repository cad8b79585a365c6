package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// marksCase is one export as a member's mesh marks its Service.
type marksCase struct {
	Name     string                      `json:"name"`
	Exporter bool                        `json:"exporter"`
	Gateway  bool                        `json:"eastWestGateway"`
	Failover meshv1alpha1.ExportFailover `json:"failover"`
	Install  string                      `json:"install,omitempty"`
	Labels   map[string]string           `json:"labels,omitempty"`
	Annots   map[string]string           `json:"annotations,omitempty"`
	Refusal  string                      `json:"refusal,omitempty"`
}

// marksInstalls are the installs the cases name.
var marksInstalls = map[string]*meshv1alpha1.MeshInstall{
	"":                                     nil,
	"istio-1.26-ambient":                   exportInstall("1.26.3", meshv1alpha1.ProfileAmbient, ""),
	"istio-1.27-ambient":                   exportInstall("1.27.0", meshv1alpha1.ProfileAmbient, ""),
	"istio-1.30-sidecar":                   exportInstall("1.30.2", meshv1alpha1.ProfileSidecar, ""),
	"istio-1.26-ambient-upgrading-to-1.28": exportInstall("1.28.1", meshv1alpha1.ProfileAmbient, "1.26.3"),
}

func exportInstall(version string, profile meshv1alpha1.Profile, installed string) *meshv1alpha1.MeshInstall {
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: version, Profile: profile}}
	mi.Status.InstalledVersion = installed
	return mi
}

// TestServiceMarksGolden pins, per mesh, the labels and annotations an
// export sets on the member's own Service (mesh.ServiceMarker) in every
// mode: exporter or not, through gateways or on a flat network, failover
// None or LocalFirst, and the installs that refuse it.
func TestServiceMarksGolden(t *testing.T) {
	reg := Registry()
	installs := map[meshv1alpha1.Provider][]string{
		meshv1alpha1.ProviderLinkerd: {""},
		meshv1alpha1.ProviderCilium:  {""},
		meshv1alpha1.ProviderIstio:   {"", "istio-1.30-sidecar", "istio-1.26-ambient", "istio-1.27-ambient", "istio-1.26-ambient-upgrading-to-1.28"},
	}
	for _, p := range []meshv1alpha1.Provider{meshv1alpha1.ProviderLinkerd, meshv1alpha1.ProviderCilium, meshv1alpha1.ProviderIstio} {
		se, err := reg.ServiceExporter(p)
		if err != nil {
			t.Fatal(err)
		}
		mk, ok := se.(mesh.ServiceMarker)
		if !ok {
			t.Fatalf("%s: no ServiceMarker", p)
		}
		var cases []marksCase
		for _, inst := range installs[p] {
			for _, exporter := range []bool{true, false} {
				for _, gw := range []bool{true, false} {
					for _, fo := range []meshv1alpha1.ExportFailover{meshv1alpha1.FailoverNone, meshv1alpha1.FailoverLocalFirst} {
						m := mesh.FederationMember{Name: "east", Network: "east", MeshID: "mesh1", EastWestGateway: gw}
						svc := cart
						svc.Failover = fo
						marks, refusal := mk.ServiceMarks(marksInstalls[inst], m, svc, exporter)
						if refusal != "" && !marks.Empty() {
							t.Fatalf("%s: a refusal with marks", p)
						}
						cases = append(cases, marksCase{Name: string(p), Exporter: exporter, Gateway: gw, Failover: fo, Install: inst,
							Labels: marks.Labels, Annots: marks.Annotations, Refusal: refusal})
					}
				}
			}
		}
		b, err := yaml.Marshal(cases)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "export-marks."+strings.ToLower(string(p))+".golden.yaml")
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
		}
		if string(b) != string(want) {
			t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, b)
		}
	}
}

// TestAmbientFederationRefusal: an ambient Istio member is refused,
// naming its version, below ambient multicluster (1.27) and federated from
// 1.27 on (an istio-east-west Gateway, TestAmbientFederationGolden); its
// export scope is the istio.io/global label.
func TestAmbientFederationRefusal(t *testing.T) {
	reg := Registry()
	sf, err := reg.ServiceFederation(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ version, want string }{
		{"1.26.3", "MeshInstall istio installs Istio 1.26.3 with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
			"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"},
		{"", "MeshInstall istio installs Istio (version unknown) with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
			"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"},
		{"1.27.0-rc.1", ""},
		{"1.28.1", ""},
	} {
		f := mesh.InstallFacts{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileAmbient, Version: tc.version}
		if got := sf.FederationRefusal(f); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.version, got, tc.want)
		}
	}
	se, _ := reg.ServiceExporter(meshv1alpha1.ProviderIstio)
	sc := se.ExportScope(exportInstall("1.28.1", meshv1alpha1.ProfileAmbient, ""), nil, cart)
	if !sc.Enforced || sc.Effective != "global (labelled istio.io/global); services without a ServiceExport are not labelled and stay cluster-local (ambient)" {
		t.Fatalf("ambient scope %+v", sc)
	}
}
