package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Environment variables that override where the assets are looked up.
const (
	// EnvBinDir overrides the directory holding the cluster binaries.
	EnvBinDir = "MESHPLANE_BIN_DIR"
	// EnvCRDDir overrides the directory holding the collected third-party CRDs.
	EnvCRDDir = "MESHPLANE_CRD_DIR"
)

// Binary names, as hack/build-cluster-bins.sh writes them into the bin directory.
const (
	BinKubeAPIServer         = "kube-apiserver"
	BinKubeControllerManager = "kube-controller-manager"
	BinKubeScheduler         = "kube-scheduler"
	BinEtcd                  = "etcd"
	BinKwok                  = "kwok"
)

// ErrAssetsMissing is wrapped by every error about cluster binaries that are
// not built. Tests use it to decide between skipping and failing, see
// SkipOrFail.
var ErrAssetsMissing = errors.New("cluster binaries missing")

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the root of the Meshplane repository: the nearest directory
// at or above the working directory that holds the go.mod of module
// github.com/meshplane/meshplane. Go tests run in their package directory, so
// this works from every package of the repository.
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		rootDir, rootErr = findRepoRoot()
	})
	return rootDir, rootErr
}

func findRepoRoot() (string, error) {
	const module = "github.com/meshplane/meshplane"
	start, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := start; ; {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(data) == module {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s at or above %s", module, start)
		}
		dir = parent
	}
}

// modulePath returns the module path declared in go.mod content.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// BinDir returns the directory holding the cluster binaries: $MESHPLANE_BIN_DIR
// if set, else bin/ in the repository root. It does not check the binaries;
// see RequireBinaries.
func BinDir() (string, error) {
	if dir := os.Getenv(EnvBinDir); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("locating the cluster binaries (set %s to override): %w", EnvBinDir, err)
	}
	return filepath.Join(root, "bin"), nil
}

// CRDDir returns the directory holding the third-party CRDs written by
// hack/collectcrds: $MESHPLANE_CRD_DIR if set, else .cache/crds in the
// repository root. It does not check its content.
func CRDDir() (string, error) {
	if dir := os.Getenv(EnvCRDDir); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("locating the third-party CRDs (set %s to override): %w", EnvCRDDir, err)
	}
	return filepath.Join(root, ".cache", "crds"), nil
}

// RequireBinaries returns the paths of the named binaries in BinDir, or an
// error wrapping ErrAssetsMissing that names the missing ones and says how to
// build them.
func RequireBinaries(names ...string) (map[string]string, error) {
	dir, err := BinDir()
	if err != nil {
		return nil, err
	}
	paths := make(map[string]string, len(names))
	var missing []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
			continue
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s not found in %s: run `make test-assets` (hack/build-cluster-bins.sh) to build them, or set %s",
			ErrAssetsMissing, strings.Join(missing, ", "), dir, EnvBinDir)
	}
	return paths, nil
}

// requireCRDDir checks that dir exists and holds at least one YAML file.
func requireCRDDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("third-party CRDs missing: %s does not exist: run `make test-crds` (go run ./hack/collectcrds -out .cache/crds), or set %s", dir, EnvCRDDir)
		}
		return err
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			return nil
		}
	}
	return fmt.Errorf("third-party CRDs missing: %s holds no CRD files: run `make test-crds` (go run ./hack/collectcrds -out .cache/crds), or set %s", dir, EnvCRDDir)
}
