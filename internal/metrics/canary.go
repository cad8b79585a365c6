package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// A Canary's weight and phase (meshplane_canary_weight,
// meshplane_canary_phase) come from the Collector, which reads them from
// status at scrape time; the Canary controller does not set them. The
// metrics below record what status does not keep: each analysis check's
// value and outcome, and each webhook call's outcome.

var (
	// CanaryMetricValue is the last value of a Canary's metric check; NaN
	// when the last check had no value (no data, server unreachable).
	CanaryMetricValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshplane_canary_metric_value",
		Help: "Last value of a Canary's analysis metric (NaN when the last check had none).",
	}, []string{"namespace", "canary", "metric"})

	// CanaryMetricChecks counts a Canary's metric checks by result
	// (passed, failed).
	CanaryMetricChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshplane_canary_metric_checks_total",
		Help: "Analysis metric checks of a Canary, by result (passed, failed).",
	}, []string{"namespace", "canary", "metric", "result"})

	// CanaryWebhookCalls counts a Canary's webhook calls by type and result
	// (passed, failed).
	CanaryWebhookCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshplane_canary_webhook_calls_total",
		Help: "Webhook calls of a Canary, by webhook type and result (passed, failed).",
	}, []string{"namespace", "canary", "type", "result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(CanaryMetricValue, CanaryMetricChecks, CanaryWebhookCalls)
}

func result(passed bool) string {
	if passed {
		return "passed"
	}
	return "failed"
}

// RecordCheck records one metric check of a Canary: its value (NaN when
// none) and whether it passed.
func RecordCheck(namespace, canary, metric string, value float64, passed bool) {
	CanaryMetricValue.WithLabelValues(namespace, canary, metric).Set(value)
	CanaryMetricChecks.WithLabelValues(namespace, canary, metric, result(passed)).Inc()
}

// RecordWebhook records one webhook call of a Canary; err is the call's
// outcome.
func RecordWebhook(namespace, canary string, typ meshv1alpha1.WebhookType, err error) {
	CanaryWebhookCalls.WithLabelValues(namespace, canary, string(typ), result(err == nil)).Inc()
}

// DeleteCanary removes every series of a Canary, when it is deleted.
func DeleteCanary(namespace, canary string) {
	l := prometheus.Labels{"namespace": namespace, "canary": canary}
	CanaryMetricValue.DeletePartialMatch(l)
	CanaryMetricChecks.DeletePartialMatch(l)
	CanaryWebhookCalls.DeletePartialMatch(l)
}
