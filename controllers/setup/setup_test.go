package setup

import (
	"slices"
	"testing"

	"github.com/meshplane/meshplane/internal/manager"
)

// TestEveryKindReconciled: each kind of the API has a controller in
// Controllers, so the CSV, the chart and the docs generated from this list
// call it reconciled.
func TestEveryKindReconciled(t *testing.T) {
	got := ReconciledKinds()
	for _, k := range manager.Kinds {
		if !slices.Contains(got, k) {
			t.Errorf("kind %s has no controller in Controllers (ReconciledKinds = %v)", k, got)
		}
	}
}
