package trafficsplit

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Pin returns a copy of ts that routes every request to its stable backend
// (spec.stableBackend, else the first backend): the other backends, the
// match rules and the mirror are dropped. A BreakGlass with pinTraffic
// routes through this copy until it is restored; the split's own spec is
// not changed, so the restore is simply the next normal reconcile.
func Pin(ts *meshv1alpha1.TrafficSplit) *meshv1alpha1.TrafficSplit {
	out := ts.DeepCopy()
	stable := StableBackend(&ts.Spec)
	for _, b := range ts.Spec.Backends {
		if b.Name == stable {
			b.Weight = 100
			out.Spec.Backends = []meshv1alpha1.WeightedBackend{b}
			break
		}
	}
	out.Spec.Rules = nil
	out.Spec.Mirror = nil
	return out
}

// StableBackend is the backend a BreakGlass pins traffic to.
func StableBackend(spec *meshv1alpha1.TrafficSplitSpec) string {
	if spec.StableBackend != "" {
		return spec.StableBackend
	}
	if len(spec.Backends) > 0 {
		return spec.Backends[0].Name
	}
	return ""
}
