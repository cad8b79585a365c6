package manager

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// rateLimiterWait is how long the manager's requests waited for client-go's
// client-side rate limiter. controller-runtime's own adapter for it cannot
// be used: Cilium's API types pull in a package whose init replaces
// client-go's metric adapters with Cilium's (unexported) ones, so the
// adapter is set again here, after every init.
var rateLimiterWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "rest_client_rate_limiter_duration_seconds",
	Help:    "Client-side rate limiter latency in seconds, by verb and host (no observation when no client-side limiter is configured).",
	Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 1, 5},
}, []string{"verb", "host"})

var registerClientMetrics sync.Once

type waitObserver struct{}

func (waitObserver) Observe(_ context.Context, verb string, u url.URL, d time.Duration) {
	rateLimiterWait.WithLabelValues(verb, u.Host).Observe(d.Seconds())
}

// recordRateLimiterWaits serves rest_client_rate_limiter_duration_seconds
// on the manager's metrics endpoint.
func recordRateLimiterWaits() {
	registerClientMetrics.Do(func() {
		crmetrics.Registry.MustRegister(rateLimiterWait)
		clientmetrics.RateLimiterLatency = waitObserver{}
	})
}
