package mesh

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Telemetry capabilities (TelemetryPolicy).
const (
	// CapTracing turns span reporting on or off.
	CapTracing Capability = "Tracing"
	// CapTracingSampling sets the share of requests traced.
	CapTracingSampling Capability = "TracingSampling"
	// CapTracingCustomTags adds literal or request-header tags to spans.
	CapTracingCustomTags Capability = "TracingCustomTags"
	// CapAccessLogging turns the proxies' access logs on.
	CapAccessLogging Capability = "AccessLogging"
	// CapAccessLogDisable turns the proxies' access logs off.
	CapAccessLogDisable Capability = "AccessLogDisable"
	// CapAccessLogFilter logs only the requests a filter selects.
	CapAccessLogFilter Capability = "AccessLogFilter"
	// CapMetricTagRemoval removes labels from the mesh's standard metrics.
	CapMetricTagRemoval Capability = "MetricTagRemoval"
	// CapPerWorkloadTelemetry configures telemetry for a workload selector
	// rather than the whole namespace.
	CapPerWorkloadTelemetry Capability = "PerWorkloadTelemetry"
)

// TelemetryCapabilities are the telemetry capabilities in documentation
// order; they follow the others in AllCapabilities.
var TelemetryCapabilities = []Capability{
	CapTracing, CapTracingSampling, CapTracingCustomTags, CapAccessLogging, CapAccessLogDisable,
	CapAccessLogFilter, CapMetricTagRemoval, CapPerWorkloadTelemetry,
}

func init() {
	// Kept beside the kind rather than in capabilities.go so the kinds
	// added in parallel each extend the lists in their own file.
	AllCapabilities = append(AllCapabilities, TelemetryCapabilities...)
	for c, doc := range map[Capability]string{
		CapTracing:              "TelemetryPolicy tracing.enabled (span reporting on or off)",
		CapTracingSampling:      "TelemetryPolicy tracing.samplingPercentage",
		CapTracingCustomTags:    "TelemetryPolicy tracing.customTags (literal, request header)",
		CapAccessLogging:        "TelemetryPolicy accessLogging.enabled true",
		CapAccessLogDisable:     "TelemetryPolicy accessLogging.enabled false",
		CapAccessLogFilter:      "TelemetryPolicy accessLogging.filter.minResponseCode",
		CapMetricTagRemoval:     "TelemetryPolicy metrics.removeTags (metric cardinality)",
		CapPerWorkloadTelemetry: "TelemetryPolicy selector narrower than the namespace",
	} {
		capabilityDocs[c] = doc
	}
}

// TelemetryPolicyRequirements returns the capabilities a TelemetryPolicy
// spec uses.
func TelemetryPolicyRequirements(spec *meshv1alpha1.TelemetryPolicySpec) []Capability {
	var req []Capability
	if s := spec.Selector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		req = append(req, CapPerWorkloadTelemetry)
	}
	if t := spec.Tracing; t != nil {
		req = append(req, CapTracing)
		if t.SamplingPercentage != "" {
			req = append(req, CapTracingSampling)
		}
		if len(t.CustomTags) > 0 {
			req = append(req, CapTracingCustomTags)
		}
	}
	if a := spec.AccessLogging; a != nil {
		if a.Enabled {
			req = append(req, CapAccessLogging)
		} else {
			req = append(req, CapAccessLogDisable)
		}
		if a.Filter != nil {
			req = append(req, CapAccessLogFilter)
		}
	}
	if spec.Metrics != nil && len(spec.Metrics.RemoveTags) > 0 {
		req = append(req, CapMetricTagRemoval)
	}
	return dedupe(req)
}

// TelemetryTranslator turns a TelemetryPolicy into the mesh's telemetry
// configuration. It is pure: no I/O.
type TelemetryTranslator interface {
	Provider
	// TranslateTelemetryPolicy returns the desired objects for p in a
	// namespace with facts f, or an *UnsupportedFeatureError naming what
	// the mesh (or the namespace's data plane) cannot express.
	TranslateTelemetryPolicy(p *meshv1alpha1.TelemetryPolicy, f NamespaceFacts) ([]client.Object, error)
	// TelemetryOutputKinds are the kinds TranslateTelemetryPolicy writes,
	// for the controller's watches.
	TelemetryOutputKinds() []client.Object
	// TelemetryEffect says when the outputs take effect if not at once
	// (a setting proxies read only when they start), empty otherwise.
	TelemetryEffect(objs []client.Object) string
}

// TelemetryTranslator returns the named provider's TelemetryTranslator.
func (r *Registry) TelemetryTranslator(name meshv1alpha1.Provider) (TelemetryTranslator, error) {
	return lookup[TelemetryTranslator](r, name, "telemetry (TelemetryPolicy)")
}

// TelemetryOutputKinds returns the telemetry output kinds of every
// registered provider, without duplicates.
func (r *Registry) TelemetryOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(TelemetryTranslator); ok {
			out = appendKinds(out, t.TelemetryOutputKinds())
		}
	}
	return out
}
