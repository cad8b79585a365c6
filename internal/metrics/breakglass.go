package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// BreakGlassActive is the number of engaged (not yet restored)
// BreakGlasses per provider; the BreakGlass controller sets it.
var BreakGlassActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "meshplane_breakglass_active",
	Help: "BreakGlasses engaging, engaged or restoring (the mesh is disabled where they apply), by provider.",
}, []string{"provider"})

var breakGlassMu sync.Mutex

func init() { ctrlmetrics.Registry.MustRegister(BreakGlassActive) }

// SetBreakGlassActive replaces the gauge's values with counts by provider.
func SetBreakGlassActive(byProvider map[string]int) {
	breakGlassMu.Lock()
	defer breakGlassMu.Unlock()
	BreakGlassActive.Reset()
	for p, n := range byProvider {
		BreakGlassActive.WithLabelValues(p).Set(float64(n))
	}
}
