package traffic

import (
	"os"
	"testing"
)

// TestMain removes the manager binary the benchmarks built (about 170 MB).
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}
