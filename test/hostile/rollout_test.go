package hostile

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// rolloutRestart cases: out-of-bounds batches and pauses of a
// ZeroTrustPolicy's opt-in restart of stale proxies, refused by the API
// server on create and on update of a Ready policy (whose outputs stay).
func init() {
	edits := []struct {
		name string
		rr   meshv1alpha1.RolloutRestart
		want []string
	}{
		{"batchSize -1", meshv1alpha1.RolloutRestart{Enabled: true, BatchSize: -1},
			[]string{"spec.rolloutRestart.batchSize", "should be greater than or equal to 1"}},
		{"batchSize 1001", meshv1alpha1.RolloutRestart{Enabled: true, BatchSize: 1001},
			[]string{"spec.rolloutRestart.batchSize", "should be less than or equal to 1000"}},
		{"pause of 2h", meshv1alpha1.RolloutRestart{Enabled: true, Pause: &metav1.Duration{Duration: 2 * time.Hour}},
			[]string{"spec.rolloutRestart.pause", "rolloutRestart.pause must be between 0s and 1h"}},
	}
	for _, e := range edits {
		Register(Case{Category: "spec", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "create rolloutRestart " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				before := h.Inventory(ns)
				p := GoodZeroTrustPolicy(ns, "bad", Linkerd)
				p.Spec.RolloutRestart = e.rr.DeepCopy()
				h.Refused(p, e.want...)
				h.Same(ns, before)
			}})
		Register(Case{Category: "refused-update", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "update rolloutRestart " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
				h.Create(p)
				h.Ready(p)
				before := h.Inventory(ns)
				h.Rejected(h.Update(p, func() { p.Spec.RolloutRestart = e.rr.DeepCopy() }), e.want...)
				h.Same(ns, before)
			}})
	}
}
