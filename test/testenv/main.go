package testenv

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/meshplane/meshplane/test/cluster"
)

// Package is the envtest API server a package's TestMain started.
type Package struct {
	// Config is its admin REST config; nil in -short runs or when the
	// binaries are missing outside CI.
	Config *rest.Config
	server *cluster.Server
	skip   string
}

// Cfg returns the package's API server for a test, skipping or failing the
// test as cluster.SkipOrFail would when there is none.
func (p *Package) Cfg(t testing.TB) *rest.Config {
	t.Helper()
	if p.Config == nil {
		if testing.Short() {
			t.Skip("skipping: -short runs no API server")
		}
		if os.Getenv(cluster.EnvCI) == "true" {
			t.Fatalf("no API server: %s", p.skip)
		}
		t.Skipf("skipping: %s", p.skip)
	}
	return p.Config
}

// RunEnvtest is the body of a package's TestMain: one envtest API server
// (real Meshplane and mesh CRDs) for every test of the package, each test
// in its own namespace (Namespace). It exits with the tests' code.
//
//	var env testenv.Package
//	func TestMain(m *testing.M) { testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{}) }
func RunEnvtest(m *testing.M, p *Package, opts cluster.EnvtestOptions) {
	os.Exit(runEnvtest(m, p, opts))
}

func runEnvtest(m *testing.M, p *Package, opts cluster.EnvtestOptions) int {
	flag.Parse()
	if !testing.Short() {
		s, err := cluster.StartServer(opts)
		if err != nil {
			p.skip = err.Error()
		} else {
			p.server, p.Config = s, s.Config
			defer func() {
				if err := s.Stop(); err != nil {
					fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
				}
			}()
		}
	}
	return m.Run()
}
