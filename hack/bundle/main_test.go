package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundleUpToDate regenerates the bundle twice into temporary
// directories: both must equal bundle/ byte for byte (deterministic, and not
// stale).
func TestBundleUpToDate(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	want := readTree(t, filepath.Join(root, "bundle"))
	for i := 0; i < 2; i++ {
		out := t.TempDir()
		if err := Generate(Options{Root: root, Out: out}); err != nil {
			t.Fatal(err)
		}
		got := readTree(t, out)
		delete(want, "README.md")
		if len(got) != len(want) {
			t.Fatalf("generated %d files, bundle/ has %d (run make bundle)", len(got), len(want))
		}
		for name, b := range got {
			if want[name] != b {
				t.Errorf("bundle/%s is stale (run make bundle)", name)
			}
		}
	}
}

func TestNotReconciledKindsAreMarked(t *testing.T) {
	root, _ := filepath.Abs("../..")
	out := t.TempDir()
	if err := Generate(Options{Root: root, Out: out, Version: "0.1.0", Reconciled: []string{"MeshInstall", "TrafficSplit"}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "manifests", Package+".clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	_, pending, ok := strings.Cut(s, "Not yet reconciled")
	if !strings.Contains(s, "Reconciled: MeshInstall, TrafficSplit.") || !ok {
		t.Fatalf("status section does not follow the reconciled list")
	}
	pending, _, _ = strings.Cut(pending, ".")
	for _, kind := range []string{"Canary", "MeshFederation", "BreakGlass", "ZeroTrustPolicy"} {
		if !strings.Contains(pending, kind) {
			t.Errorf("status section: %s is not listed as not yet reconciled: %q", kind, pending)
		}
	}
	crds, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(crds) < 3 {
		t.Fatalf("CRDs: %v (%d)", err, len(crds))
	}
	if n, want := strings.Count(s, "Not reconciled by this version"), len(crds)-2; n != want {
		t.Errorf("%d owned CRDs marked not reconciled, want %d (every owned CRD but MeshInstall and TrafficSplit)", n, want)
	}
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImageIsMakeImage: the CSV's containerImage and relatedImages are the
// image `make image` builds by default, <IMAGE_REPO>:v<VERSION>.
func TestImageIsMakeImage(t *testing.T) {
	root, _ := filepath.Abs("../..")
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "\nIMAGE_REPO ?= "+DefaultImageRepo+"\n") {
		t.Fatalf("the Makefile's IMAGE_REPO default is not %s", DefaultImageRepo)
	}
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultImageRepo + ":v" + strings.TrimSpace(string(v))
	b, err := os.ReadFile(filepath.Join(root, "bundle", "manifests", Package+".clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "containerImage: "+want+"\n") || !strings.Contains(s, "relatedImages:\n  - image: "+want+"\n    name: manager\n") ||
		!strings.Contains(s, "image: "+want+"\n") {
		t.Errorf("the CSV does not use %s for containerImage, relatedImages and the Deployment", want)
	}
}
