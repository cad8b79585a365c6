package providers

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/meshplane/meshplane/internal/mesh"
)

var update = flag.Bool("update", false, "rewrite docs/capabilities.md")

const docPath = "../../../docs/capabilities.md"

const docHeader = `# Capability matrix

Generated from the providers' code by ` + "`make docs`" + ` (internal/mesh/providers/matrix_test.go);
do not edit. A feature marked — is rejected for that mesh with condition
` + "`Ready=False`, reason `UnsupportedFeature`" + `, naming the feature, the mesh and what to change, and nothing is applied.
Capabilities are decided per MeshInstall and namespace: a cell with conditions (listed
below the table) holds only where the install and the namespace's data plane meet them.

`

// TestCapabilityMatrixDoc keeps docs/capabilities.md equal to what the
// registry declares.
func TestCapabilityMatrixDoc(t *testing.T) {
	want := docHeader + mesh.CapabilityMatrix(Registry())
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (run make docs)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/capabilities.md is stale; run make docs")
	}
	for _, c := range mesh.AllCapabilities {
		if !strings.Contains(want, "`"+string(c)+"`") {
			t.Errorf("capability %s missing from the matrix", c)
		}
	}
}
