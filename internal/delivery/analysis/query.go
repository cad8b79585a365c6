package analysis

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Names of the built-in metrics.
const (
	// RequestSuccessRate is the percentage (0–100) of requests to the
	// canary workload answered without a 5xx.
	RequestSuccessRate = "request-success-rate"
	// RequestDuration is the 99th percentile of the canary workload's
	// request duration, in milliseconds.
	RequestDuration = "request-duration"
)

// DefaultInterval is the range window of queries when neither the metric
// nor the target has an interval.
const DefaultInterval = time.Minute

// builtin holds the query templates of each provider, with the same
// placeholders as custom queries. The labels they assume are documented in
// doc.go and docs/canary-analysis.md.
var builtin = map[meshv1alpha1.Provider]map[string]string{
	meshv1alpha1.ProviderIstio: {
		// Sidecars report inbound requests with reporter="destination";
		// in ambient mode the waypoint reports with reporter="waypoint".
		RequestSuccessRate: `sum(rate(istio_requests_total{reporter=~"destination|waypoint",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",response_code!~"5.."}[{{ interval }}]))` +
			` / sum(rate(istio_requests_total{reporter=~"destination|waypoint",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) * 100`,
		RequestDuration: `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter=~"destination|waypoint",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])))`,
	},
	meshv1alpha1.ProviderLinkerd: {
		// The proxy's inbound side; namespace and deployment are the
		// labels linkerd-viz's Prometheus scrape config adds from the pod.
		RequestSuccessRate: `sum(rate(response_total{namespace="{{ namespace }}",deployment="{{ target }}",direction="inbound",classification!="failure"}[{{ interval }}]))` +
			` / sum(rate(response_total{namespace="{{ namespace }}",deployment="{{ target }}",direction="inbound"}[{{ interval }}])) * 100`,
		RequestDuration: `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{namespace="{{ namespace }}",deployment="{{ target }}",direction="inbound"}[{{ interval }}])))`,
	},
	meshv1alpha1.ProviderCilium: {
		// Hubble's httpV2 metrics with
		// labelsContext=...,destination_namespace,destination_workload.
		RequestSuccessRate: `sum(rate(hubble_http_requests_total{destination_namespace="{{ namespace }}",destination_workload="{{ target }}",status!~"5.."}[{{ interval }}]))` +
			` / sum(rate(hubble_http_requests_total{destination_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) * 100`,
		RequestDuration: `histogram_quantile(0.99, sum by (le) (rate(hubble_http_request_duration_seconds_bucket{destination_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}]))) * 1000`,
	},
}

// IsBuiltin reports whether name is a built-in metric.
func IsBuiltin(name string) bool { return name == RequestSuccessRate || name == RequestDuration }

var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_.]*)\s*\}\}`)

// Query renders the query of m for t: the provider's built-in query for
// request-success-rate and request-duration (unless m.Query is set, which
// always wins), or m.Query with {{ namespace }}, {{ target }},
// {{ service }} and {{ interval }} filled in ({{namespace}} and other
// spacings are accepted). The interval is m.Interval, else t.Interval, else
// one minute, in Prometheus duration syntax. It returns an error for a
// built-in name the provider has no query for, a metric that is neither
// built in nor has a query, and an unknown placeholder.
func Query(m meshv1alpha1.CanaryMetric, t Target) (string, error) {
	tmpl := m.Query
	if strings.TrimSpace(tmpl) == "" {
		if !IsBuiltin(m.Name) {
			return "", fmt.Errorf("metric %q is not built in (request-success-rate, request-duration) and has no query", m.Name)
		}
		q, ok := builtin[t.Provider][m.Name]
		if !ok {
			if t.Provider == "" {
				return "", fmt.Errorf("metric %q is built in per mesh but the Canary's provider is not known; set a query", m.Name)
			}
			return "", fmt.Errorf("provider %q has no built-in query for metric %q; set a query", t.Provider, m.Name)
		}
		tmpl = q
	}
	iv := t.Interval
	if m.Interval != nil && m.Interval.Duration > 0 {
		iv = m.Interval.Duration
	}
	if iv <= 0 {
		iv = DefaultInterval
	}
	values := map[string]string{
		"namespace": t.Namespace,
		"target":    t.Workload,
		"service":   t.Service,
		"interval":  model.Duration(iv).String(),
	}
	var unknown []string
	out := placeholder.ReplaceAllStringFunc(tmpl, func(s string) string {
		key := placeholder.FindStringSubmatch(s)[1]
		v, ok := values[key]
		if !ok {
			unknown = append(unknown, s)
			return s
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("metric %q: unknown placeholder %s in query; use {{ namespace }}, {{ target }}, {{ service }} or {{ interval }}", m.Name, strings.Join(unknown, ", "))
	}
	if _, err := Parse(out); err != nil {
		return "", fmt.Errorf("metric %q: %w", m.Name, err)
	}
	return out, nil
}

// promQL is Prometheus's own PromQL parser with its default options (no
// experimental functions), as a Prometheus server without feature flags
// parses.
var promQL = parser.NewParser(parser.Options{})

// Parse parses a rendered query with Prometheus's PromQL parser and
// returns its expression; the error names the position and what is wrong.
func Parse(q string) (parser.Expr, error) {
	expr, err := promQL.ParseExpr(q)
	if err != nil {
		return nil, fmt.Errorf("query %s is not valid PromQL: %w", q, err)
	}
	return expr, nil
}
