package hostile

import (
	"flag"
	"testing"

	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// env is the shared API server of the non-isolated cases.
var env testenv.Package

// parallel is how many cases run at once unless -test.parallel is given:
// cases mostly wait on conditions, not on the CPU.
const parallel = "8"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", parallel)
	}
	testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{})
}
