package linkerd

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

func TestCheckExclusive(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pol := func(name string, age int, mod ...func(*meshv1alpha1.ZeroTrustPolicy)) meshv1alpha1.ZeroTrustPolicy {
		p := meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "books",
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Duration(age) * time.Minute))}}
		for _, m := range mod {
			m(&p)
		}
		return p
	}
	holding := func(p *meshv1alpha1.ZeroTrustPolicy) {
		p.Status.Inventory = []meshv1alpha1.ObjectReference{{APIVersion: "v1", Kind: "Namespace", Name: "books"}}
	}
	deleting := func(p *meshv1alpha1.ZeroTrustPolicy) { p.DeletionTimestamp = &metav1.Time{Time: t0} }
	onCilium := func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.Provider = meshv1alpha1.ProviderCilium }
	onLinkerd := func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.Provider = meshv1alpha1.ProviderLinkerd }
	for _, tc := range []struct {
		name   string
		policy string
		all    []meshv1alpha1.ZeroTrustPolicy
		winner string // "" when policy may use Linkerd
	}{
		{"alone", "web", []meshv1alpha1.ZeroTrustPolicy{pol("web", 1)}, ""},
		{"the oldest wins", "second", []meshv1alpha1.ZeroTrustPolicy{pol("web", 5), pol("second", 1)}, "web"},
		{"the oldest may", "web", []meshv1alpha1.ZeroTrustPolicy{pol("web", 5), pol("second", 1)}, ""},
		{"same age: first by name", "b", []meshv1alpha1.ZeroTrustPolicy{pol("b", 1), pol("a", 1)}, "a"},
		{"the holder keeps the namespace over an older policy", "old", []meshv1alpha1.ZeroTrustPolicy{pol("old", 9), pol("holder", 1, holding)}, "holder"},
		{"a deleting policy does not count", "second", []meshv1alpha1.ZeroTrustPolicy{pol("web", 5, holding, deleting), pol("second", 1)}, ""},
		{"a policy naming another provider does not count", "second", []meshv1alpha1.ZeroTrustPolicy{pol("web", 5, onCilium), pol("second", 1)}, ""},
		{"a policy naming Linkerd counts", "second", []meshv1alpha1.ZeroTrustPolicy{pol("web", 5, onLinkerd), pol("second", 1)}, "web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *meshv1alpha1.ZeroTrustPolicy
			for i := range tc.all {
				if tc.all[i].Name == tc.policy {
					p = &tc.all[i]
				}
			}
			err := New().CheckExclusive(p, tc.all)
			if tc.winner == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			term, ok := outcome.AsTerminal(err)
			if !ok || term.StalledReason() != meshv1alpha1.ConflictReason || !outcome.IsConflict(err) ||
				!strings.Contains(err.Error(), "ZeroTrustPolicy "+tc.winner+" ") || !strings.Contains(err.Error(), "namespace books") {
				t.Fatalf("error %v, want a Conflict naming %s", err, tc.winner)
			}
		})
	}
}
