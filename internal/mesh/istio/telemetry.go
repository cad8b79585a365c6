package istio

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/wrapperspb"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// +kubebuilder:rbac:groups=telemetry.istio.io,resources=telemetries,verbs=get;list;watch;create;update;patch;delete

// Istio's built-in provider names: Envoy's own access log (stdout) and the
// Prometheus metrics every sidecar exports.
const (
	envoyLogProvider       = "envoy"
	prometheusProvider     = "prometheus"
	telemetryKind          = "Telemetry"
	ambientTelemetryDetail = "ztunnel has no L7 telemetry (spans, HTTP access logs, HTTP metric tags); Istio applies them only in a waypoint, which a Telemetry reaches through targetRefs that Meshplane does not write: " +
		"configure telemetry in sidecar namespaces, or attach a Telemetry to the namespace's waypoint yourself"
)

// TelemetryOutputKinds returns Telemetry.
func (*Provider) TelemetryOutputKinds() []client.Object {
	return []client.Object{&istiotelemetry.Telemetry{TypeMeta: metav1.TypeMeta{APIVersion: istiotelemetry.SchemeGroupVersion.String(), Kind: telemetryKind}}}
}

// TelemetryEffect is empty: Istio's proxies receive Telemetry over xDS.
func (*Provider) TelemetryEffect([]client.Object) string { return "" }

// TranslateTelemetryPolicy returns one Telemetry (telemetry.istio.io/v1)
// of the policy's name: tracing with disableSpanReporting, the random
// sampling percentage and custom tags (literal, request header) on the
// mesh's default tracing provider; access logging on Envoy's built-in
// provider with the filter as the CEL expression "response.code >= N";
// metrics on the Prometheus provider with the removed tags as REMOVE
// overrides of every metric, client and server side. Istio's workload
// selectors take matchLabels only, so matchExpressions are refused. In an
// ambient namespace the L7 telemetry a TelemetryPolicy configures is
// refused (see ambientTelemetryDetail).
func (p *Provider) TranslateTelemetryPolicy(pol *meshv1alpha1.TelemetryPolicy, f mesh.NamespaceFacts) ([]client.Object, error) {
	req := mesh.TelemetryPolicyRequirements(&pol.Spec)
	if err := mesh.Check(p, req...); err != nil {
		return nil, err
	}
	if f.Mode == mesh.Ambient {
		return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: req,
			Where: fmt.Sprintf("Istio in ambient namespace %s", f.Name), Detail: ambientTelemetryDetail}
	}
	var sel *typev1beta1.WorkloadSelector
	if s := pol.Spec.Selector; s != nil {
		if len(s.MatchExpressions) > 0 {
			return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapPerWorkloadTelemetry},
				Detail: "Istio workload selectors take matchLabels only; express spec.selector with matchLabels"}
		}
		if len(s.MatchLabels) > 0 {
			sel = &typev1beta1.WorkloadSelector{MatchLabels: s.MatchLabels}
		}
	}
	tel := &istiotelemetry.Telemetry{
		TypeMeta:   metav1.TypeMeta{APIVersion: istiotelemetry.SchemeGroupVersion.String(), Kind: telemetryKind},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name, Namespace: pol.Namespace},
	}
	spec := &tel.Spec
	spec.Selector = sel
	if t := pol.Spec.Tracing; t != nil {
		tr, err := tracing(t)
		if err != nil {
			return nil, err
		}
		spec.Tracing = []*telemetryv1alpha1.Tracing{tr}
	}
	if a := pol.Spec.AccessLogging; a != nil {
		al := &telemetryv1alpha1.AccessLogging{Providers: []*telemetryv1alpha1.ProviderRef{{Name: envoyLogProvider}},
			Disabled: wrapperspb.Bool(!a.Enabled)}
		if a.Filter != nil {
			al.Filter = &telemetryv1alpha1.AccessLogging_Filter{Expression: fmt.Sprintf("response.code >= %d", a.Filter.MinResponseCode)}
		}
		spec.AccessLogging = []*telemetryv1alpha1.AccessLogging{al}
	}
	if m := pol.Spec.Metrics; m != nil && len(m.RemoveTags) > 0 {
		ov := &telemetryv1alpha1.MetricsOverrides{
			Match:        &telemetryv1alpha1.MetricSelector{MetricMatch: &telemetryv1alpha1.MetricSelector_Metric{Metric: telemetryv1alpha1.MetricSelector_ALL_METRICS}},
			TagOverrides: map[string]*telemetryv1alpha1.MetricsOverrides_TagOverride{},
		}
		for _, tag := range m.RemoveTags {
			ov.TagOverrides[tag] = &telemetryv1alpha1.MetricsOverrides_TagOverride{Operation: telemetryv1alpha1.MetricsOverrides_TagOverride_REMOVE}
		}
		spec.Metrics = []*telemetryv1alpha1.Metrics{{Providers: []*telemetryv1alpha1.ProviderRef{{Name: prometheusProvider}},
			Overrides: []*telemetryv1alpha1.MetricsOverrides{ov}}}
	}
	return []client.Object{tel}, nil
}

// tracing translates the tracing settings.
func tracing(t *meshv1alpha1.TracingSettings) (*telemetryv1alpha1.Tracing, error) {
	tr := &telemetryv1alpha1.Tracing{DisableSpanReporting: wrapperspb.Bool(!t.Enabled)}
	if t.SamplingPercentage != "" {
		pct, err := strconv.ParseFloat(t.SamplingPercentage, 64)
		if err != nil || pct < 0 || pct > 100 {
			return nil, invalidSpec("spec.tracing.samplingPercentage %q is not a percentage between 0 and 100", t.SamplingPercentage)
		}
		tr.RandomSamplingPercentage = wrapperspb.Double(pct)
	}
	if len(t.CustomTags) > 0 {
		tr.CustomTags = make(map[string]*telemetryv1alpha1.Tracing_CustomTag, len(t.CustomTags))
		for _, ct := range t.CustomTags {
			tag := &telemetryv1alpha1.Tracing_CustomTag{}
			switch {
			case ct.Literal != nil:
				tag.Type = &telemetryv1alpha1.Tracing_CustomTag_Literal{Literal: &telemetryv1alpha1.Tracing_Literal{Value: *ct.Literal}}
			case ct.RequestHeader != nil:
				tag.Type = &telemetryv1alpha1.Tracing_CustomTag_Header{Header: &telemetryv1alpha1.Tracing_RequestHeader{Name: *ct.RequestHeader}}
			default:
				return nil, invalidSpec("spec.tracing.customTags[%s] needs literal or requestHeader", ct.Name)
			}
			tr.CustomTags[ct.Name] = tag
		}
	}
	return tr, nil
}

var _ mesh.TelemetryTranslator = (*Provider)(nil)

func invalidSpec(format string, args ...any) error {
	return outcome.Stalled(meshv1alpha1.InvalidSpecReason, format, args...)
}
