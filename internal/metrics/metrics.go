// Package metrics holds Meshplane's own Prometheus metrics, registered in
// controller-runtime's registry so they are served beside the reconcile
// metrics on the manager's /metrics endpoint.
package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// BuildInfo is 1, labelled with the operator's version and Go version.
	BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshplane_build_info",
		Help: "Meshplane build information; the value is always 1.",
	}, []string{"version", "goversion"})

	// ProviderRegistered is 1 for every mesh provider this build can drive.
	ProviderRegistered = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshplane_provider_registered",
		Help: "Mesh providers registered in this Meshplane build (1 each).",
	}, []string{"provider"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(BuildInfo, ProviderRegistered)
}

// stampedVersion is set at link time by `make image` (hack/image.sh:
// -X github.com/meshplane/meshplane/internal/metrics.stampedVersion=VERSION).
var stampedVersion string

// Version returns the version `make image` stamped, else the main module's
// version as built, or "devel".
func Version() string {
	if stampedVersion != "" {
		return stampedVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// RecordBuild sets BuildInfo and ProviderRegistered.
func RecordBuild(providers []string) {
	BuildInfo.WithLabelValues(Version(), runtime.Version()).Set(1)
	for _, p := range providers {
		ProviderRegistered.WithLabelValues(p).Set(1)
	}
}
