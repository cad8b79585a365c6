package istio

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// +kubebuilder:rbac:groups=networking.istio.io,resources=destinationrules;envoyfilters,verbs=get;list;watch;create;update;patch;delete

// Versions that gate resilience fields.
const (
	// retryBudgetSince is the first Istio minor whose DestinationRule has
	// trafficPolicy.retryBudget.
	retryBudgetSince = 27
	// faultRouteName and policyRouteName name the routes of a policy's own
	// VirtualService.
	faultRouteName  = "fault"
	policyRouteName = "policy"
)

// ResilienceOutputKinds returns DestinationRule, VirtualService and
// EnvoyFilter (local rate limit).
func (*Provider) ResilienceOutputKinds() []client.Object {
	return []client.Object{
		&istionetworking.DestinationRule{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "DestinationRule"}},
		&istionetworking.VirtualService{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "VirtualService"}},
		envoyFilterKind(),
	}
}

func envoyFilterKind() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("networking.istio.io/v1alpha3")
	u.SetKind("EnvoyFilter")
	return u
}

// istioMinor returns the minor of an Istio version ("1.28.1" -> 28), or
// -1 when unknown.
func istioMinor(v string) int {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil || major != 1 {
		return -1
	}
	return minor
}

// ResilienceSupport answers per field: DestinationRule trafficPolicy for
// pools, outlier detection, load balancing and the retry budget;
// VirtualService for retries, the request timeout and faults; an
// EnvoyFilter (Istio's documented local rate limit pattern) for the rate
// limit. Istio's outlier detection has no success-rate mode and its routes
// no stream idle timeout. In ambient namespaces everything goes through
// the waypoint (decided per Service by the translation); route-level
// fields and EnvoyFilters are refused there.
func (*Provider) ResilienceSupport(s mesh.Scope, f mesh.ResilienceField) mesh.Support {
	switch f {
	case mesh.RFSuccessRate:
		return mesh.Refused("Istio's outlierDetection has no success-rate mode; use consecutive5xxErrors or consecutiveGatewayErrors")
	case mesh.RFIdleTimeout:
		return mesh.Refused("Istio routes have no stream idle timeout; use connectionPool.idleTimeout")
	}
	if s.Namespace.Mode == mesh.Ambient {
		if s.Install.MeshInstall != "" && s.Install.Profile != meshv1alpha1.ProfileAmbient {
			return mesh.Refused("namespace " + s.Namespace.Name + " is ambient but MeshInstall " + s.Install.MeshInstall + " has no spec.profile Ambient")
		}
		if len(serviceWaypoints(s.Namespace)) == 0 {
			return mesh.Refused("namespace " + s.Namespace.Name + " is ambient and no waypoint serves it; " + EnableWaypointHint(s.Namespace.Name))
		}
		if f == mesh.RFLocalRateLimit || f == mesh.RFLocalRateLimitPath || f == mesh.RFGlobalRateLimit {
			return mesh.Refused("EnvoyFilters do not apply to ambient waypoints; move the namespace to sidecar mode")
		}
		for _, rf := range mesh.RouteFields {
			if f == rf {
				return mesh.Refused("in ambient namespaces routes are Gateway API HTTPRoutes, which carry no retries or faults in the standard channel; use sidecar mode")
			}
		}
		return mesh.Enforced(istioAs(f) + ", applied by the Service's waypoint")
	}
	minor := istioMinor(s.Install.Version)
	if f == mesh.RFRetryBudget && minor >= 0 && minor < retryBudgetSince {
		return mesh.Refused(fmt.Sprintf("DestinationRule retryBudget needs Istio 1.%d or later; installed %s: upgrade the MeshInstall", retryBudgetSince, s.Install.Version))
	}
	return mesh.Enforced(istioAs(f))
}

// lbAs says what a load-balancing field becomes in a DestinationRule.
var lbAs = map[mesh.ResilienceField]string{
	mesh.RFRoundRobin: "simple ROUND_ROBIN", mesh.RFLeastRequest: "simple LEAST_REQUEST", mesh.RFRandom: "simple RANDOM",
	mesh.RFHashHeader: "consistentHash.httpHeaderName", mesh.RFHashCookie: "consistentHash.httpCookie",
	mesh.RFHashSourceIP: "consistentHash.useSourceIp", mesh.RFWarmup: "warmupDurationSecs",
}

// istioAs says what a field becomes on Istio.
func istioAs(f mesh.ResilienceField) string {
	switch f {
	case mesh.RFMaxConnections:
		return "DestinationRule connectionPool.tcp.maxConnections"
	case mesh.RFConnectTimeout:
		return "DestinationRule connectionPool.tcp.connectTimeout"
	case mesh.RFMaxPendingRequests:
		return "DestinationRule connectionPool.http.http1MaxPendingRequests"
	case mesh.RFMaxRequests:
		return "DestinationRule connectionPool.http.http2MaxRequests"
	case mesh.RFMaxRequestsPerConnection, mesh.RFPoolIdleTimeout:
		return "DestinationRule connectionPool.http." + strings.TrimPrefix(string(f), "connectionPool.")
	case mesh.RFRetryBudget:
		return "DestinationRule trafficPolicy.retryBudget (Istio 1.27+)"
	case mesh.RFRetries, mesh.RFRetryPerTryTimeout, mesh.RFRetryOn:
		return "VirtualService http[].retries (composed into the VirtualService of a TrafficSplit or Canary for the same Service)"
	case mesh.RFRequestTimeout:
		return "VirtualService http[].timeout (composed into the VirtualService of a TrafficSplit or Canary for the same Service)"
	case mesh.RFFaultDelay, mesh.RFFaultAbort, mesh.RFFaultHeaders:
		return "VirtualService http[].fault (composed into the VirtualService of a TrafficSplit or Canary for the same Service)"
	case mesh.RFLocalRateLimit:
		return "EnvoyFilter envoy.filters.http.local_ratelimit on the target's sidecars (inbound)"
	case mesh.RFLocalRateLimitPath:
		return "EnvoyFilter HTTP_ROUTE patch on the target's inbound routes: typed_per_filter_config envoy.filters.http.local_ratelimit with a descriptor for the path prefix"
	case mesh.RFGlobalRateLimit:
		return "EnvoyFilter envoy.filters.http.ratelimit on the target's sidecars (inbound), calling the rate-limit service's outbound cluster, with the descriptor as the inbound routes' rate_limits actions (HTTP_ROUTE patch)"
	}
	if as, ok := lbAs[f]; ok {
		return "DestinationRule loadBalancer." + as
	}
	return "DestinationRule outlierDetection." + strings.TrimPrefix(string(f), "outlierDetection.")
}

// TranslateResiliencePolicy returns a DestinationRule (pools, outlier
// detection, load balancing, retry budget), a VirtualService (retries,
// request timeout, faults) unless a TrafficSplit routes the target (its
// VirtualService carries them: ComposeRoute), and an EnvoyFilter (local
// rate limit). In ambient namespaces the Service's waypoint must exist.
func (p *Provider) TranslateResiliencePolicy(in mesh.ResilienceInput) ([]client.Object, error) {
	rp := in.Policy
	if err := mesh.DecideResilience(p, in.Scope, &rp.Spec); err != nil {
		return nil, err
	}
	if f := in.Scope.Namespace; f.Mode == mesh.Ambient {
		if _, why := serviceWaypoint(f, rp.Spec.TargetRef.Name); why != "" {
			return nil, refuseAmbient("%s: resilience settings in ambient mode are enforced by a waypoint; %s (nothing was applied)", why, EnableWaypointHint(f.Name))
		}
	}
	var objs []client.Object
	if dr := destinationRule(rp); dr != nil {
		objs = append(objs, dr)
	}
	if mesh.HasRouteFields(&rp.Spec) && in.ComposedWith == nil {
		objs = append(objs, policyVirtualService(rp))
	}
	if rp.Spec.RateLimit != nil {
		ef, err := rateLimitFilter(rp, in.Service)
		if err != nil {
			return nil, err
		}
		objs = append(objs, ef)
	}
	if err := mesh.CheckOutputs(mesh.ResilienceOwner(rp), objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// destinationRule returns the policy's DestinationRule, nil when no field
// lives there. With a port, the settings are port-level; the retry budget
// is a whole-host setting.
func destinationRule(rp *meshv1alpha1.ResiliencePolicy) *istionetworking.DestinationRule {
	spec := &rp.Spec
	tp := &networkingv1alpha3.TrafficPolicy{
		ConnectionPool:   connectionPool(spec.ConnectionPool),
		OutlierDetection: outlierDetection(spec.OutlierDetection),
		LoadBalancer:     loadBalancer(spec.LoadBalancer),
	}
	var budget *networkingv1alpha3.TrafficPolicy_RetryBudget
	if r := spec.Retries; r != nil && r.Budget != nil {
		budget = &networkingv1alpha3.TrafficPolicy_RetryBudget{Percent: wrapperspb.Double(float64(r.Budget.Percent))}
		if r.Budget.MinRetryConcurrency != nil {
			budget.MinRetryConcurrency = uint32(*r.Budget.MinRetryConcurrency)
		}
	}
	if tp.ConnectionPool == nil && tp.OutlierDetection == nil && tp.LoadBalancer == nil && budget == nil {
		return nil
	}
	if port := spec.TargetRef.Port; port != nil && (tp.ConnectionPool != nil || tp.OutlierDetection != nil || tp.LoadBalancer != nil) {
		tp = &networkingv1alpha3.TrafficPolicy{PortLevelSettings: []*networkingv1alpha3.TrafficPolicy_PortTrafficPolicy{{
			Port:           &networkingv1alpha3.PortSelector{Number: uint32(*port)},
			ConnectionPool: tp.ConnectionPool, OutlierDetection: tp.OutlierDetection, LoadBalancer: tp.LoadBalancer,
		}}}
	}
	tp.RetryBudget = budget
	return &istionetworking.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "DestinationRule"},
		ObjectMeta: metav1.ObjectMeta{Name: rp.Name, Namespace: rp.Namespace},
		Spec:       networkingv1alpha3.DestinationRule{Host: spec.TargetRef.Name, TrafficPolicy: tp},
	}
}

func connectionPool(cp *meshv1alpha1.ConnectionPool) *networkingv1alpha3.ConnectionPoolSettings {
	if cp == nil {
		return nil
	}
	out := &networkingv1alpha3.ConnectionPoolSettings{}
	if cp.MaxConnections != nil || cp.ConnectTimeout != nil {
		out.Tcp = &networkingv1alpha3.ConnectionPoolSettings_TCPSettings{}
		if cp.MaxConnections != nil {
			out.Tcp.MaxConnections = *cp.MaxConnections
		}
		if cp.ConnectTimeout != nil {
			out.Tcp.ConnectTimeout = durationpb.New(cp.ConnectTimeout.Duration)
		}
	}
	if cp.MaxPendingRequests != nil || cp.MaxRequests != nil || cp.MaxRequestsPerConnection != nil || cp.IdleTimeout != nil {
		h := &networkingv1alpha3.ConnectionPoolSettings_HTTPSettings{}
		if cp.MaxPendingRequests != nil {
			h.Http1MaxPendingRequests = *cp.MaxPendingRequests
		}
		if cp.MaxRequests != nil {
			h.Http2MaxRequests = *cp.MaxRequests
		}
		if cp.MaxRequestsPerConnection != nil {
			h.MaxRequestsPerConnection = *cp.MaxRequestsPerConnection
		}
		if cp.IdleTimeout != nil {
			h.IdleTimeout = durationpb.New(cp.IdleTimeout.Duration)
		}
		out.Http = h
	}
	return out
}

func outlierDetection(od *meshv1alpha1.OutlierDetection) *networkingv1alpha3.OutlierDetection {
	if od == nil {
		return nil
	}
	out := &networkingv1alpha3.OutlierDetection{}
	if od.Consecutive5xxErrors != nil {
		out.Consecutive_5XxErrors = wrapperspb.UInt32(uint32(*od.Consecutive5xxErrors))
	}
	if od.ConsecutiveGatewayErrors != nil {
		out.ConsecutiveGatewayErrors = wrapperspb.UInt32(uint32(*od.ConsecutiveGatewayErrors))
	}
	if od.Interval != nil {
		out.Interval = durationpb.New(od.Interval.Duration)
	}
	if od.BaseEjectionTime != nil {
		out.BaseEjectionTime = durationpb.New(od.BaseEjectionTime.Duration)
	}
	if od.MaxEjectionPercent != nil {
		out.MaxEjectionPercent = *od.MaxEjectionPercent
	}
	return out
}

func loadBalancer(lb *meshv1alpha1.LoadBalancer) *networkingv1alpha3.LoadBalancerSettings {
	if lb == nil {
		return nil
	}
	out := &networkingv1alpha3.LoadBalancerSettings{}
	switch lb.Algorithm {
	case meshv1alpha1.LoadBalancerRoundRobin:
		out.LbPolicy = &networkingv1alpha3.LoadBalancerSettings_Simple{Simple: networkingv1alpha3.LoadBalancerSettings_ROUND_ROBIN}
	case meshv1alpha1.LoadBalancerLeastRequest:
		out.LbPolicy = &networkingv1alpha3.LoadBalancerSettings_Simple{Simple: networkingv1alpha3.LoadBalancerSettings_LEAST_REQUEST}
	case meshv1alpha1.LoadBalancerRandom:
		out.LbPolicy = &networkingv1alpha3.LoadBalancerSettings_Simple{Simple: networkingv1alpha3.LoadBalancerSettings_RANDOM}
	case meshv1alpha1.LoadBalancerConsistentHash:
		ch := &networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB{}
		switch h := lb.ConsistentHash; {
		case h.Header != "":
			ch.HashKey = &networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName{HttpHeaderName: strings.ToLower(h.Header)}
		case h.Cookie != nil:
			c := &networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_HTTPCookie{Name: h.Cookie.Name}
			if h.Cookie.TTL != nil {
				c.Ttl = durationpb.New(h.Cookie.TTL.Duration)
			}
			ch.HashKey = &networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpCookie{HttpCookie: c}
		default:
			ch.HashKey = &networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_UseSourceIp{UseSourceIp: true}
		}
		out.LbPolicy = &networkingv1alpha3.LoadBalancerSettings_ConsistentHash{ConsistentHash: ch}
	}
	if lb.Warmup != nil {
		// warmupDurationSecs is honoured by every Istio Meshplane installs;
		// its successor warmup is only in the newest CRDs.
		out.WarmupDurationSecs = durationpb.New(lb.Warmup.Duration) //nolint:staticcheck // see above

	}
	return out
}

// policyVirtualService routes the target to itself with the policy's
// route-level fields: with header-matched faults, a first route for the
// matching requests carries the fault; with a port, the routes match that
// port and a last route passes the other ports through unchanged (a
// VirtualService without a route for a port would answer 404 there).
func policyVirtualService(rp *meshv1alpha1.ResiliencePolicy) *istionetworking.VirtualService {
	spec := &rp.Spec
	svc := spec.TargetRef.Name
	route := func(name string) *networkingv1alpha3.HTTPRoute {
		hr := &networkingv1alpha3.HTTPRoute{Name: name, Route: []*networkingv1alpha3.HTTPRouteDestination{{Destination: &networkingv1alpha3.Destination{Host: svc}}}}
		if port := spec.TargetRef.Port; port != nil {
			hr.Match = []*networkingv1alpha3.HTTPMatchRequest{{Port: uint32(*port)}}
		}
		return hr
	}
	var routes []*networkingv1alpha3.HTTPRoute
	main := route(policyRouteName)
	setRouteFields(main, spec, spec.FaultInjection != nil && len(spec.FaultInjection.Headers) == 0)
	if f := spec.FaultInjection; f != nil && len(f.Headers) > 0 {
		faulty := route(faultRouteName)
		setRouteFields(faulty, spec, true)
		faulty.Match = withHeaders(faulty.Match, f.Headers)
		routes = append(routes, faulty)
	}
	routes = append(routes, main)
	if spec.TargetRef.Port != nil {
		routes = append(routes, &networkingv1alpha3.HTTPRoute{Name: "other-ports",
			Route: []*networkingv1alpha3.HTTPRouteDestination{{Destination: &networkingv1alpha3.Destination{Host: svc}}}})
	}
	return &istionetworking.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "VirtualService"},
		ObjectMeta: metav1.ObjectMeta{Name: rp.Name, Namespace: rp.Namespace},
		Spec:       networkingv1alpha3.VirtualService{Hosts: []string{svc}, Http: routes},
	}
}

// setRouteFields sets the policy's retries and request timeout on hr, and
// its fault when fault is true.
func setRouteFields(hr *networkingv1alpha3.HTTPRoute, spec *meshv1alpha1.ResiliencePolicySpec, fault bool) {
	if t := spec.Timeouts; t != nil && t.Request != nil {
		hr.Timeout = durationpb.New(t.Request.Duration)
	}
	if r := spec.Retries; r != nil {
		hr.Retries = httpRetry(&r.RetryPolicy)
	}
	if f := spec.FaultInjection; fault && f != nil {
		hr.Fault = &networkingv1alpha3.HTTPFaultInjection{}
		if d := f.Delay; d != nil {
			hr.Fault.Delay = &networkingv1alpha3.HTTPFaultInjection_Delay{
				HttpDelayType: &networkingv1alpha3.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(d.FixedDelay.Duration)},
				Percentage:    &networkingv1alpha3.Percent{Value: float64(d.Percent)},
			}
		}
		if a := f.Abort; a != nil {
			hr.Fault.Abort = &networkingv1alpha3.HTTPFaultInjection_Abort{
				ErrorType:  &networkingv1alpha3.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: a.HTTPStatus},
				Percentage: &networkingv1alpha3.Percent{Value: float64(a.Percent)},
			}
		}
	}
}

// withHeaders adds the header matches to every match request (one empty
// request when there is none).
func withHeaders(ms []*networkingv1alpha3.HTTPMatchRequest, hs []meshv1alpha1.HTTPHeaderMatch) []*networkingv1alpha3.HTTPMatchRequest {
	if len(ms) == 0 {
		ms = []*networkingv1alpha3.HTTPMatchRequest{{}}
	}
	extra := matchRequests(meshv1alpha1.HTTPMatch{Headers: hs})[0].Headers
	out := make([]*networkingv1alpha3.HTTPMatchRequest, 0, len(ms))
	for _, m := range ms {
		c := &networkingv1alpha3.HTTPMatchRequest{Uri: m.Uri, Method: m.Method, Port: m.Port, Headers: map[string]*networkingv1alpha3.StringMatch{}}
		for k, v := range m.Headers {
			c.Headers[k] = v
		}
		for k, v := range extra {
			c.Headers[k] = v
		}
		out = append(out, c)
	}
	return out
}

// ComposeRoute sets rp's retries, request timeout and faults on the HTTP
// routes of the TrafficSplit's VirtualService in objs: one VirtualService
// per host. Header-matched faults become a route before each of the
// split's routes, for the requests carrying the headers; with a target
// port, the policy's fields go on copies of the split's routes that match
// that port, and the split's routes stay as they were for the other
// ports. A route whose match already tests a header the fault matches on
// is refused (the fault's condition would replace the route's).
func (*Provider) ComposeRoute(objs []client.Object, rp *meshv1alpha1.ResiliencePolicy) ([]client.Object, error) {
	spec := &rp.Spec
	headerFault := spec.FaultInjection != nil && len(spec.FaultInjection.Headers) > 0
	for _, o := range objs {
		vs, ok := o.(*istionetworking.VirtualService)
		if !ok {
			continue
		}
		var routes []*networkingv1alpha3.HTTPRoute
		for _, hr := range vs.Spec.Http {
			if headerFault {
				if clash := headerClash(hr.Match, spec.FaultInjection.Headers); clash != "" {
					return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
						"%s spec.faultInjection.headers: header %s is also matched by rule %s of the TrafficSplit routing Service %s; the composed route cannot carry both conditions — match another header",
						mesh.ResilienceOwner(rp), clash, hr.Name, spec.TargetRef.Name)
				}
				faulty := cloneRoute(hr)
				faulty.Name = hr.Name + "-" + faultRouteName
				faulty.Match = withHeaders(withPort(hr.Match, spec.TargetRef.Port), spec.FaultInjection.Headers)
				setRouteFields(faulty, spec, true)
				routes = append(routes, faulty)
			}
			if spec.TargetRef.Port == nil {
				setRouteFields(hr, spec, spec.FaultInjection != nil && !headerFault)
				routes = append(routes, hr)
				continue
			}
			scoped := cloneRoute(hr)
			scoped.Name = hr.Name + "-" + policyRouteName
			scoped.Match = withPort(hr.Match, spec.TargetRef.Port)
			setRouteFields(scoped, spec, spec.FaultInjection != nil && !headerFault)
			routes = append(routes, scoped, hr)
		}
		vs.Spec.Http = routes
	}
	return objs, nil
}

// withPort returns the match requests restricted to port (one request for
// the port when there is none); unchanged when port is nil.
func withPort(ms []*networkingv1alpha3.HTTPMatchRequest, port *int32) []*networkingv1alpha3.HTTPMatchRequest {
	if port == nil {
		return ms
	}
	if len(ms) == 0 {
		return []*networkingv1alpha3.HTTPMatchRequest{{Port: uint32(*port)}}
	}
	out := make([]*networkingv1alpha3.HTTPMatchRequest, 0, len(ms))
	for _, m := range ms {
		c := m.DeepCopy()
		c.Port = uint32(*port)
		out = append(out, c)
	}
	return out
}

func cloneRoute(hr *networkingv1alpha3.HTTPRoute) *networkingv1alpha3.HTTPRoute {
	return hr.DeepCopy()
}

func headerClash(ms []*networkingv1alpha3.HTTPMatchRequest, hs []meshv1alpha1.HTTPHeaderMatch) string {
	for _, m := range ms {
		for _, h := range hs {
			if _, ok := m.Headers[strings.ToLower(h.Name)]; ok {
				return strings.ToLower(h.Name)
			}
		}
	}
	return ""
}

// targetPort returns the container port Service port port forwards to; a
// named targetPort cannot be matched by an inbound listener's port number.
func targetPort(svc *corev1.Service, port int32) (int32, error) {
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		switch {
		case sp.TargetPort.IntValue() > 0:
			return int32(sp.TargetPort.IntValue()), nil
		case sp.TargetPort.String() == "" || sp.TargetPort.String() == "0":
			return port, nil
		}
		return 0, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.rateLimit with spec.targetRef.port %d: Service %s's port %d has the named targetPort %q, which an inbound listener cannot select; give the port a numeric targetPort or drop spec.targetRef.port", port, svc.Name, port, sp.TargetPort.String())
	}
	return 0, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.targetRef.port: Service %s has no port %d", svc.Name, port)
}
