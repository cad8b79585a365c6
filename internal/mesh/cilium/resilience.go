package cilium

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
)

// +kubebuilder:rbac:groups=cilium.io,resources=ciliumenvoyconfigs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;patch

// Service annotations of Cilium's Envoy-based L7 load balancing: the first
// redirects the Service to Envoy, the second picks the algorithm (Cilium's
// operator reads the second only where the first is set).
const (
	LBL7Annotation          = "service.cilium.io/lb-l7"
	LBL7AlgorithmAnnotation = "service.cilium.io/lb-l7-algorithm"
	// useOriginalSourceAnnotation is set to "false" on a
	// CiliumEnvoyConfig for east-west traffic, as Cilium's L7 traffic
	// management guide says (else upstream sockets bind the client's
	// address and port and may collide).
	useOriginalSourceAnnotation = "cec.cilium.io/use-original-source-address"
)

// Versions that gate Cilium's resilience outputs.
const (
	// envoyConfigSince is the first Cilium minor serving CiliumEnvoyConfig
	// as cilium.io/v2.
	envoyConfigSince = 14
	// gammaSince is the first Cilium minor with GAMMA (an HTTPRoute whose
	// parent is a Service).
	gammaSince = 15
)

// lbAlgorithms maps the algorithms to lb-l7-algorithm values (Envoy's
// lb_policy in lower case, as Cilium's operator reads them).
var lbAlgorithms = map[meshv1alpha1.LoadBalancerAlgorithm]string{
	meshv1alpha1.LoadBalancerRoundRobin: "round_robin", meshv1alpha1.LoadBalancerLeastRequest: "least_request",
	meshv1alpha1.LoadBalancerRandom: "random",
}

// ciliumMinor returns the minor of a Cilium version ("1.19.5" -> 19), or
// -1 when unknown.
func ciliumMinor(v string) int {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil || major != 1 {
		return -1
	}
	return minor
}

// ResilienceOutputKinds returns HTTPRoute (request timeout),
// CiliumEnvoyConfig (Envoy cluster and HTTP filter settings) and Service
// (the lb-l7 annotations, a shared object: only the annotations are
// applied and they are restored when released).
func (*Provider) ResilienceOutputKinds() []client.Object {
	return []client.Object{gamma.OutputKind(), envoyConfigKind()}
}

func envoyConfigKind() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("cilium.io/v2")
	u.SetKind("CiliumEnvoyConfig")
	return u
}

// envoyFields are the fields that need the policy's CiliumEnvoyConfig.
var envoyFields = []mesh.ResilienceField{
	mesh.RFMaxConnections, mesh.RFMaxPendingRequests, mesh.RFMaxRequests, mesh.RFMaxRequestsPerConnection, mesh.RFConnectTimeout,
	mesh.RFPoolIdleTimeout, mesh.RFConsecutive5xx, mesh.RFConsecutiveGateway, mesh.RFOutlierInterval, mesh.RFBaseEjectionTime,
	mesh.RFMaxEjectionPercent, mesh.RFSuccessRate, mesh.RFIdleTimeout, mesh.RFFaultDelay, mesh.RFFaultAbort, mesh.RFFaultHeaders,
	mesh.RFLocalRateLimit,
}

// ResilienceSupport answers per field. Every L7 setting needs Cilium's
// Envoy (MeshInstall spec.cilium.envoy). The request timeout is a GAMMA
// HTTPRoute's timeouts.request (composed into a TrafficSplit's HTTPRoute);
// the L7 algorithm the Service annotations service.cilium.io/lb-l7 and
// lb-l7-algorithm; pools, outlier detection, the stream idle timeout,
// faults and the local rate limit a CiliumEnvoyConfig for the Service
// (which then also carries the request timeout and the algorithm: one
// Envoy listener per Service). Retries are in Gateway API's experimental
// channel only; hashing, warm-up and retry budgets have no Cilium
// mechanism.
func (*Provider) ResilienceSupport(s mesh.Scope, f mesh.ResilienceField) mesh.Support {
	if !s.Install.Envoy {
		return mesh.Refused("Cilium's Envoy is not enabled in " + s.Where() + "; set spec.cilium.envoy on the MeshInstall")
	}
	minor := ciliumMinor(s.Install.Version)
	switch f {
	case mesh.RFRequestTimeout:
		if !s.Install.GatewayAPI || !s.Install.GatewayAPICRDs {
			return mesh.Refused("needs Cilium's Gateway API support (GAMMA HTTPRoute) in " + s.Where() + "; set spec.cilium.gatewayAPI on the MeshInstall and install Gateway API's CRDs")
		}
		if minor >= 0 && minor < gammaSince {
			return mesh.Refused(fmt.Sprintf("a GAMMA HTTPRoute needs Cilium 1.%d or later; installed %s: upgrade the MeshInstall", gammaSince, s.Install.Version))
		}
		return mesh.Enforced("HTTPRoute timeouts.request on a GAMMA route with the Service as parent (composed into a TrafficSplit's HTTPRoute for the same Service; the CiliumEnvoyConfig route's timeout when the policy has one)")
	case mesh.RFRetryBudget:
		return mesh.Refused("Cilium has no retry budget (neither its GAMMA routes nor a route Meshplane could write carry one)")
	case mesh.RFRetries, mesh.RFRetryPerTryTimeout, mesh.RFRetryOn:
		return mesh.Refused("HTTPRoute retry is only in Gateway API's experimental channel and Meshplane writes standard-channel HTTPRoutes (Cilium 1.19 reads it where the experimental CRDs are installed)")
	case mesh.RFHashHeader, mesh.RFHashCookie, mesh.RFHashSourceIP, mesh.RFWarmup:
		return mesh.Refused("service.cilium.io/lb-l7-algorithm has no hashing or warm-up; use RoundRobin, LeastRequest or Random")
	case mesh.RFRoundRobin, mesh.RFLeastRequest, mesh.RFRandom:
		return mesh.Enforced("Service annotations " + LBL7Annotation + ": enabled and " + LBL7AlgorithmAnnotation + " (restored when the policy goes); the CiliumEnvoyConfig cluster's lb_policy when the policy has one")
	case mesh.RFGlobalRateLimit:
		return mesh.Refused("Cilium documents no global rate limiting, and Meshplane does not wire an external rate-limit service into Cilium's Envoy; use rateLimit.local")
	case mesh.RFLocalRateLimitPath:
		return mesh.Refused("the CiliumEnvoyConfig's local rate limit covers the whole Service, not one path; drop rateLimit.local.pathPrefix")
	}
	if minor >= 0 && minor < envoyConfigSince {
		return mesh.Refused(fmt.Sprintf("cilium.io/v2 CiliumEnvoyConfig needs Cilium 1.%d or later; installed %s: upgrade the MeshInstall", envoyConfigSince, s.Install.Version))
	}
	return mesh.Enforced(envoyAs(f))
}

// envoyAs says what a CiliumEnvoyConfig field becomes.
func envoyAs(f mesh.ResilienceField) string {
	const cec = "CiliumEnvoyConfig "
	switch f {
	case mesh.RFMaxConnections, mesh.RFMaxPendingRequests, mesh.RFMaxRequests:
		return cec + "cluster circuit_breakers.thresholds " + map[mesh.ResilienceField]string{
			mesh.RFMaxConnections: "max_connections", mesh.RFMaxPendingRequests: "max_pending_requests", mesh.RFMaxRequests: "max_requests"}[f]
	case mesh.RFMaxRequestsPerConnection:
		return cec + "cluster HttpProtocolOptions common_http_protocol_options.max_requests_per_connection"
	case mesh.RFPoolIdleTimeout:
		return cec + "cluster HttpProtocolOptions common_http_protocol_options.idle_timeout"
	case mesh.RFConnectTimeout:
		return cec + "cluster connect_timeout"
	case mesh.RFSuccessRate:
		return cec + "cluster outlier_detection success_rate_minimum_hosts, success_rate_request_volume, success_rate_stdev_factor"
	case mesh.RFConsecutive5xx:
		return cec + "cluster outlier_detection.consecutive_5xx"
	case mesh.RFConsecutiveGateway:
		return cec + "cluster outlier_detection.consecutive_gateway_failure (enforced at 100%)"
	case mesh.RFOutlierInterval:
		return cec + "cluster outlier_detection.interval"
	case mesh.RFBaseEjectionTime:
		return cec + "cluster outlier_detection.base_ejection_time"
	case mesh.RFMaxEjectionPercent:
		return cec + "cluster outlier_detection.max_ejection_percent"
	case mesh.RFIdleTimeout:
		return cec + "route idle_timeout"
	case mesh.RFFaultDelay, mesh.RFFaultAbort, mesh.RFFaultHeaders:
		return cec + "listener HTTP filter envoy.filters.http.fault"
	case mesh.RFLocalRateLimit:
		return cec + "listener HTTP filter envoy.filters.http.local_ratelimit"
	}
	return cec + "cluster"
}

// needsEnvoyConfig reports whether spec sets a field of the CiliumEnvoyConfig.
func needsEnvoyConfig(spec *meshv1alpha1.ResiliencePolicySpec) bool {
	for _, f := range mesh.ResilienceFieldsOf(spec) {
		for _, e := range envoyFields {
			if f == e {
				return true
			}
		}
	}
	return false
}

// TranslateResiliencePolicy returns, for a policy with Envoy settings, one
// CiliumEnvoyConfig that redirects the Service to an Envoy listener
// carrying them all (also the request timeout and the algorithm);
// otherwise a GAMMA HTTPRoute for the request timeout (none when a
// TrafficSplit's HTTPRoute on the same port carries it: ComposeRoute) and
// the lb-l7 annotations on the Service for the algorithm. Two Envoy
// redirects for one Service (the policy's CiliumEnvoyConfig or the lb-l7
// annotations, next to an HTTPRoute for the Service) are refused: Cilium
// defines no precedence between two.
func (p *Provider) TranslateResiliencePolicy(in mesh.ResilienceInput) ([]client.Object, error) {
	rp := in.Policy
	if err := mesh.DecideResilience(p, in.Scope, &rp.Spec); err != nil {
		return nil, err
	}
	spec := &rp.Spec
	routed := in.ComposedWith
	if routed == nil {
		routed = in.Routed
	}
	var objs []client.Object
	switch {
	case needsEnvoyConfig(spec):
		if routed != nil {
			return nil, p.clash(in, []mesh.ResilienceField{envoyFieldOf(spec)},
				fmt.Sprintf("TrafficSplit %s routes Service %s with a GAMMA HTTPRoute, for which Cilium writes its own Envoy listener; a CiliumEnvoyConfig for the same Service would be a second redirect, and Cilium defines no precedence between two", routed.Name, spec.TargetRef.Name),
				"move the pool, outlier, idle-timeout, fault and rate-limit settings out of this policy while the TrafficSplit exists")
		}
		objs = append(objs, envoyConfig(rp))
	default:
		ownRoute := false
		if t := spec.Timeouts; t != nil && t.Request != nil {
			port, err := routePort(in)
			if err != nil {
				return nil, err
			}
			if ownRoute = !composes(in.ComposedWith, port); ownRoute {
				objs = append(objs, policyRoute(rp, port))
			}
		}
		if lb := spec.LoadBalancer; lb != nil {
			if routed != nil || ownRoute {
				why, refuse := "the policy's own HTTPRoute (timeouts.request)", p.refuse
				if routed != nil {
					why, refuse = "TrafficSplit "+routed.Name+"'s HTTPRoute", p.clash
				}
				return nil, refuse(in, []mesh.ResilienceField{mesh.ResilienceField("loadBalancer.algorithm: " + string(lb.Algorithm))},
					"the lb-l7 annotations make Cilium redirect Service "+spec.TargetRef.Name+" to an Envoy listener of its own, and "+why+" is a second one; Cilium defines no precedence between two",
					"drop loadBalancer, or add an Envoy setting (for example connectionPool) so that one CiliumEnvoyConfig carries the algorithm and the timeout")
			}
			objs = append(objs, lbAnnotations(in.Service, lbAlgorithms[lb.Algorithm]))
		}
	}
	if err := mesh.CheckOutputs(mesh.ResilienceOwner(rp), objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// envoyFieldOf returns the first field of spec that needs the
// CiliumEnvoyConfig.
func envoyFieldOf(spec *meshv1alpha1.ResiliencePolicySpec) mesh.ResilienceField {
	for _, f := range mesh.ResilienceFieldsOf(spec) {
		for _, e := range envoyFields {
			if f == e {
				return f
			}
		}
	}
	return ""
}

func (p *Provider) refuse(in mesh.ResilienceInput, fs []mesh.ResilienceField, detail, fix string) error {
	return p.unsupported(in, fs, detail, fix)
}

func (p *Provider) unsupported(in mesh.ResilienceInput, fs []mesh.ResilienceField, detail, fix string) *mesh.UnsupportedFeatureError {
	features := make([]mesh.Capability, 0, len(fs))
	for _, f := range fs {
		features = append(features, mesh.Capability(f))
	}
	return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: features, Where: in.Scope.Where(), Detail: detail, Fix: fix}
}

// clash is refuse for a clash with a TrafficSplit's route: the policy's
// outputs of an earlier generation are removed (mesh.RouteClashError).
func (p *Provider) clash(in mesh.ResilienceInput, fs []mesh.ResilienceField, detail, fix string) error {
	return &mesh.RouteClashError{UnsupportedFeatureError: p.unsupported(in, fs, detail, fix)}
}

// routePort returns the Service port a GAMMA route binds to: the target
// port, or the Service's only TCP port.
func routePort(in mesh.ResilienceInput) (int32, error) {
	spec := &in.Policy.Spec
	if spec.TargetRef.Port != nil {
		return *spec.TargetRef.Port, nil
	}
	var tcp []int32
	if in.Service != nil {
		for _, sp := range in.Service.Spec.Ports {
			if sp.Protocol == "" || sp.Protocol == corev1.ProtocolTCP {
				tcp = append(tcp, sp.Port)
			}
		}
	}
	if len(tcp) == 1 {
		return tcp[0], nil
	}
	return 0, &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderCilium, Features: []mesh.Capability{mesh.Capability(mesh.RFRequestTimeout)},
		Where:  in.Scope.Where(),
		Detail: fmt.Sprintf("a GAMMA HTTPRoute binds to one Service port and Service %s has TCP ports %v", spec.TargetRef.Name, tcp),
		Fix:    "set spec.targetRef.port to the port the timeout is for"}
}

// composes reports whether TrafficSplit ts's HTTPRoute carries the
// policy's route fields: it routes the same port.
func composes(ts *meshv1alpha1.TrafficSplit, port int32) bool {
	return ts != nil && (ts.Spec.Service.Port == nil || *ts.Spec.Service.Port == port)
}

// policyRoute is the policy's own GAMMA HTTPRoute: the Service's port as
// parent, the same Service and port as backend, the request timeout.
func policyRoute(rp *meshv1alpha1.ResiliencePolicy, port int32) *gatewayv1.HTTPRoute {
	svc := gatewayv1.ObjectName(rp.Spec.TargetRef.Name)
	pn := gatewayv1.PortNumber(port)
	d := gamma.Duration(rp.Spec.Timeouts.Request.Duration)
	group, kind := gatewayv1.Group(""), gatewayv1.Kind("Service")
	name := gatewayv1.SectionName("policy")
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: rp.Name, Namespace: rp.Namespace},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Group: &group, Kind: &kind, Name: svc, Port: &pn}}},
			Rules: []gatewayv1.HTTPRouteRule{{
				Name:        &name,
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Group: &group, Kind: &kind, Name: svc, Port: &pn}}}},
				Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: &d},
			}},
		},
	}
}

// lbAnnotations is the target Service as a shared object: metadata only,
// the two lb-l7 annotations, applied as fields of a Service Meshplane does
// not own (internal/apply restores their previous values on release).
func lbAnnotations(svc *corev1.Service, algorithm string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	u.SetName(svc.Name)
	u.SetNamespace(svc.Namespace)
	u.SetAnnotations(map[string]string{LBL7Annotation: "enabled", LBL7AlgorithmAnnotation: algorithm})
	return u
}

// ComposeRoute sets rp's request timeout on every rule of the
// TrafficSplit's GAMMA HTTPRoute in objs when the route binds the port the
// policy targets (a policy for another port writes its own route). The
// other route-level fields are refused on Cilium before composition.
func (*Provider) ComposeRoute(objs []client.Object, rp *meshv1alpha1.ResiliencePolicy) ([]client.Object, error) {
	t := rp.Spec.Timeouts
	if t == nil || t.Request == nil {
		return objs, nil
	}
	d := gamma.Duration(t.Request.Duration)
	for _, o := range objs {
		hr, ok := o.(*gatewayv1.HTTPRoute)
		if !ok {
			continue
		}
		if p := rp.Spec.TargetRef.Port; p != nil && len(hr.Spec.ParentRefs) > 0 && hr.Spec.ParentRefs[0].Port != nil && int32(*hr.Spec.ParentRefs[0].Port) != *p {
			continue
		}
		for i := range hr.Spec.Rules {
			r := &hr.Spec.Rules[i]
			if r.Timeouts == nil {
				r.Timeouts = &gatewayv1.HTTPRouteTimeouts{}
			}
			r.Timeouts.Request = &d
		}
	}
	return objs, nil
}
