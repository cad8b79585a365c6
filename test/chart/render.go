// Package chart tests the Helm chart charts/meshplane through the Helm v4
// SDK: strict lint, rendering with default and high-availability values,
// the values schema, RBAC parity with config/rbac/role.yaml, and an install
// of the rendered manifests on a simulated cluster where the real manager
// binary runs as the chart's ServiceAccount.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/meshplane/meshplane/test/cluster"
)

// ReleaseName and Namespace are the release the tests render.
const (
	ReleaseName = "meshplane"
	Namespace   = "meshplane-system"
)

// Dir returns the chart's directory.
func Dir() (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "charts", "meshplane"), nil
}

// Render renders the chart client-side, as `helm template` does, and
// returns its objects (with the crds/ folder when includeCRDs).
func Render(vals map[string]any, includeCRDs bool) ([]*unstructured.Unstructured, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = ReleaseName
	install.Namespace = Namespace
	install.IncludeCRDs = includeCRDs
	kv, err := chartcommon.ParseKubeVersion("v1.37.0")
	if err != nil {
		return nil, err
	}
	install.KubeVersion = kv
	r, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", r)
	}
	return decode([]byte(rel.Manifest))
}

func decode(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// MakeImage returns the version and the image reference `make image`
// builds by default: <Makefile IMAGE_REPO>:v<VERSION>, read from the
// repository at root.
func MakeImage(root string) (version, image string, err error) {
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "", "", err
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`(?m)^IMAGE_REPO \?= (\S+)$`).FindSubmatch(mk)
	if m == nil {
		return "", "", fmt.Errorf("%s/Makefile has no IMAGE_REPO ?= default", root)
	}
	version = strings.TrimSpace(string(v))
	return version, string(m[1]) + ":v" + version, nil
}
