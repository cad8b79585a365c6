package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// A Canary's weight and phase gauges (meshplane_canary_weight,
// meshplane_canary_phase) come from the Collector, which reads them from
// status at scrape time, so they are never out of step with the API and
// there is one source for each series. The metrics below record what a
// scrape of status cannot see: phase transitions between scrapes (a
// rollback and its recovery within one scrape interval), each analysis
// check's value and outcome, and each webhook call's outcome.

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

	// CanaryPhaseTransitions counts a Canary's phase changes by the phase
	// entered.
	CanaryPhaseTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshplane_canary_phase_transitions_total",
		Help: "Phase changes of a Canary, by the phase entered (e.g. Failed counts rollbacks).",
	}, []string{"namespace", "canary", "phase"})

	// CanaryWebhookCalls counts a Canary's webhook calls by type and result
	// (passed, failed).
	CanaryWebhookCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshplane_canary_webhook_calls_total",
		Help: "Webhook calls of a Canary, by webhook type and result (passed, failed).",
	}, []string{"namespace", "canary", "type", "result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(CanaryMetricValue, CanaryMetricChecks, CanaryPhaseTransitions, CanaryWebhookCalls)
}

// lastPhase is the phase SetCanary last saw per Canary ("namespace/name").
var lastPhase sync.Map

// SetCanary records the status the Canary controller wrote. A phase other
// than the one last recorded for that Canary counts one transition into it
// (meshplane_canary_phase_transitions_total); the first phase seen after
// the operator starts is only remembered, so a restart counts nothing.
// weight and phase themselves are reported by the Collector from status
// (meshplane_canary_weight, meshplane_canary_phase); weight is accepted for
// the controller's convenience and not recorded twice.
func SetCanary(namespace, name string, weight int32, phase meshv1alpha1.CanaryPhase) {
	_ = weight
	if phase == "" {
		return
	}
	prev, loaded := lastPhase.Swap(namespace+"/"+name, phase)
	if loaded && prev.(meshv1alpha1.CanaryPhase) != phase {
		CanaryPhaseTransitions.WithLabelValues(namespace, name, string(phase)).Inc()
	}
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
	CanaryPhaseTransitions.DeletePartialMatch(l)
	CanaryWebhookCalls.DeletePartialMatch(l)
	lastPhase.Delete(namespace + "/" + canary)
}
