package linkerd

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// AccessLogAnnotation is the namespace (or pod template) annotation
// Linkerd's injector turns into the proxy's access-log setting: "apache"
// (Apache Common Log Format) or "json"; unset, the proxy logs no requests.
const AccessLogAnnotation = "config.linkerd.io/access-log"

// accessLogFormat is the format Meshplane sets.
const accessLogFormat = "apache"

// telemetryDetail explains what Linkerd's proxy has, for refusals.
const telemetryDetail = "Linkerd's proxy reports spans only through the linkerd-jaeger extension's injector, and follows the caller's sampling decision " +
	"(no sampling percentage, custom tags or on/off switch Meshplane can set); its access log is on when config.linkerd.io/access-log is set, " +
	"which Meshplane sets on the namespace (no workload selector, no filter, and it cannot turn off an annotation it did not set); " +
	"its metrics have no per-label removal"

// TelemetryOutputKinds returns nothing: the access-log setting is a field
// of the Namespace, which is shared and never owned.
func (*Provider) TelemetryOutputKinds() []client.Object { return nil }

// TelemetryEffect says that the proxies read the access-log setting when
// they are injected.
func (*Provider) TelemetryEffect(objs []client.Object) string {
	if len(objs) == 0 {
		return ""
	}
	return "Linkerd's injector reads " + AccessLogAnnotation + " when a pod is created: pods running before it was set log " +
		"no requests until their workloads restart (kubectl rollout restart)"
}

// TranslateTelemetryPolicy returns, for a namespace-wide policy that turns
// access logging on, the namespace's config.linkerd.io/access-log
// annotation set to apache. Everything else a TelemetryPolicy can say is
// refused (telemetryDetail); only one namespace-wide TelemetryPolicy per
// namespace may set it (the controller's overlap rule).
func (p *Provider) TranslateTelemetryPolicy(pol *meshv1alpha1.TelemetryPolicy, _ mesh.NamespaceFacts) ([]client.Object, error) {
	if missing := p.Capabilities().Missing(mesh.TelemetryPolicyRequirements(&pol.Spec)...); len(missing) > 0 {
		return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: missing, Detail: telemetryDetail}
	}
	if a := pol.Spec.AccessLogging; a == nil || !a.Enabled {
		return nil, nil
	}
	return []client.Object{&corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Namespace, Annotations: map[string]string{AccessLogAnnotation: accessLogFormat}},
	}}, nil
}

var _ mesh.TelemetryTranslator = (*Provider)(nil)
