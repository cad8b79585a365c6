package linkerd

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// Annotations Linkerd reads on a Service (and, for retries and timeouts,
// on an HTTPRoute whose parent is the Service, which then overrides the
// Service's): failure accrual
// (https://linkerd.io/2/reference/circuit-breaking/) and timeouts
// (https://linkerd.io/2/reference/timeouts/).
const (
	FailureAccrualAnnotation  = "balancer.linkerd.io/failure-accrual"
	MaxFailuresAnnotation     = "balancer.linkerd.io/failure-accrual-consecutive-max-failures"
	MinPenaltyAnnotation      = "balancer.linkerd.io/failure-accrual-consecutive-min-penalty"
	MaxPenaltyAnnotation      = "balancer.linkerd.io/failure-accrual-consecutive-max-penalty"
	RequestTimeoutAnnotation  = "timeout.linkerd.io/request"
	IdleTimeoutAnnotation     = "timeout.linkerd.io/idle"
	failureAccrualConsecutive = "consecutive"
)

// defaultMaxPenalty is Linkerd's default upper bound of the failure
// accrual back-off; a longer baseEjectionTime raises the bound to it.
const defaultMaxPenalty = time.Minute

// accrualRelease: 2.13 introduced failure accrual (circuit breaking) with
// the balancer.linkerd.io annotations
// (https://linkerd.io/2.13/reference/circuit-breaking/).
var accrualRelease = release{stable: 13, edgeYear: 23, edgeMonth: 3}

// ResilienceSupport answers per field what Linkerd has: failure accrual
// (consecutive failures, Linkerd 2.13+) as Service annotations; retries and
// request and idle timeouts (2.16+) as retry.linkerd.io/timeout.linkerd.io
// annotations on the Service, or on the TrafficSplit's HTTPRoute when one
// routes the Service; no connection pools, fault injection, retry budget
// per policy or choice of load balancer (Linkerd always balances by EWMA
// latency), and a local rate limit only on a Server.
func (*Provider) ResilienceSupport(s mesh.Scope, f mesh.ResilienceField) mesh.Support {
	gate := func(r release, as string) mesh.Support {
		if !atLeast(s.Install.Version, r) {
			return mesh.Refused(fmt.Sprintf("needs Linkerd %s or later (installed: %s) for %s; upgrade the MeshInstall", r, s.Install.Version, as))
		}
		return mesh.Enforced(as)
	}
	switch f {
	case mesh.RFConsecutive5xx:
		return gate(accrualRelease, "Service annotations "+FailureAccrualAnnotation+": consecutive and "+MaxFailuresAnnotation+" (Linkerd counts 5xx responses as failures)")
	case mesh.RFBaseEjectionTime:
		return gate(accrualRelease, "Service annotation "+MinPenaltyAnnotation+" (first back-off; "+MaxPenaltyAnnotation+" is raised to it when it exceeds Linkerd's 1m default)")
	case mesh.RFConsecutiveGateway:
		return mesh.Refused("Linkerd's failure accrual counts every 5xx response alike; use consecutive5xxErrors")
	case mesh.RFOutlierInterval, mesh.RFMaxEjectionPercent:
		return mesh.Refused("Linkerd's failure accrual has no sweep interval or ejection cap")
	case mesh.RFSuccessRate:
		return mesh.Refused("Linkerd's failure accrual has no success-rate mode")
	case mesh.RFRetries:
		return gate(annotationsRelease, RetryLimitAnnotation+" on the Service (on the TrafficSplit's HTTPRoute when one routes it)")
	case mesh.RFRetryPerTryTimeout:
		return gate(annotationsRelease, RetryTimeoutAnnotation+" on the Service (on the TrafficSplit's HTTPRoute when one routes it)")
	case mesh.RFRetryOn:
		return gate(annotationsRelease, RetryHTTPAnnotation+" (5xx, gateway-error, 409) and "+RetryGRPCAnnotation+" (unavailable, cancelled, deadline-exceeded); connection resets and refused streams are refused")
	case mesh.RFRequestTimeout:
		return gate(annotationsRelease, RequestTimeoutAnnotation+" on the Service (on the TrafficSplit's HTTPRoute when one routes it)")
	case mesh.RFIdleTimeout:
		return gate(annotationsRelease, IdleTimeoutAnnotation+" on the Service (on the TrafficSplit's HTTPRoute when one routes it)")
	case mesh.RFLocalRateLimit:
		return gate(rateLimitRelease, "HTTPLocalRateLimitPolicy total.requestsPerSecond on the Server that already covers the target's pods and port "+
			"(Meshplane does not create a Server: a new Server changes which traffic the port admits); whole requests per second, burst unset or equal to requests")
	case mesh.RFGlobalRateLimit:
		return mesh.Refused("Linkerd has no global rate limiting (HTTPLocalRateLimitPolicy limits each proxy on its own); use rateLimit.local")
	case mesh.RFLocalRateLimitPath:
		return mesh.Refused("Linkerd's HTTPLocalRateLimitPolicy limits a whole Server, not a path; drop rateLimit.local.pathPrefix")
	case mesh.RFRetryBudget:
		return mesh.Refused("Linkerd's retry annotations have no budget (only retry.linkerd.io/limit per request); remove retries.budget")
	case mesh.RFFaultDelay, mesh.RFFaultAbort, mesh.RFFaultHeaders:
		return mesh.Refused("Linkerd has no fault injection")
	case mesh.RFRoundRobin, mesh.RFLeastRequest, mesh.RFRandom, mesh.RFHashHeader, mesh.RFHashCookie, mesh.RFHashSourceIP, mesh.RFWarmup:
		return mesh.Refused("Linkerd always balances by EWMA latency (no algorithm choice, hashing or warm-up)")
	}
	return mesh.Refused("Linkerd has no connection pool limits")
}

// ResilienceOutputKinds returns HTTPLocalRateLimitPolicy (the local rate
// limit); Linkerd's other resilience settings are annotations of the
// target Service (a shared object, never owned) or of the TrafficSplit's
// route (the split's output).
func (*Provider) ResilienceOutputKinds() []client.Object {
	return []client.Object{rateLimitKindObject()}
}

// TranslateResiliencePolicy returns the target Service (metadata only: a
// shared object whose given annotations only are applied) carrying the
// annotations the policy sets: failure accrual, and the retry and timeout
// annotations unless a TrafficSplit's route carries them (ComposeRoute).
// Linkerd reads these annotations for every port of the Service, so a
// policy for one port of a Service with several is refused, as are retries
// and timeouts on a headless Service (Linkerd applies them by Service
// address) and a Service that is itself a Meshplane output.
func (p *Provider) TranslateResiliencePolicy(in mesh.ResilienceInput) ([]client.Object, error) {
	rp, svc := in.Policy, in.Service
	if err := mesh.DecideResilience(p, in.Scope, &rp.Spec); err != nil {
		return nil, err
	}
	if svc.Labels[ownership.ManagedByLabel] == ownership.ManagedByValue {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.targetRef.name: Service %s is an output of Meshplane object %s; Linkerd's settings are annotations of the Service, which Meshplane does not set on its own outputs — target the Service your clients call",
			svc.Name, svc.Labels[ownership.OwnerLabel])
	}
	if port := rp.Spec.TargetRef.Port; port != nil && len(svc.Spec.Ports) > 1 {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.targetRef.port %d: Linkerd reads resilience annotations for every port of Service %s, which has %d ports; leave spec.targetRef.port unset (the policy then covers every port) or split the port into its own Service",
			*port, svc.Name, len(svc.Spec.Ports))
	}
	ann := map[string]string{}
	if od := rp.Spec.OutlierDetection; od != nil && od.Consecutive5xxErrors != nil {
		accrual(ann, od)
	}
	if in.ComposedWith == nil {
		if err := routeAnnotations(ann, rp); err != nil {
			return nil, err
		}
	} else if err := composable(rp, in.ComposedWith.Name); err != nil {
		return nil, err
	}
	var limits []client.Object
	if rl := rp.Spec.RateLimit; rl != nil && rl.Global == nil {
		var err error
		if limits, err = rateLimitPolicies(in); err != nil {
			return nil, err
		}
	}
	if len(ann) == 0 {
		return limits, nil
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone && hasRetryOrTimeout(ann) {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.targetRef.name: Service %s is headless (clusterIP None) and Linkerd applies retries and timeouts only to calls to a Service address; target a Service with a cluster IP or remove retries and timeouts",
			svc.Name)
	}
	// Only the metadata: the Service's spec is the user's.
	out := &unstructured.Unstructured{}
	out.SetAPIVersion("v1")
	out.SetKind("Service")
	out.SetName(svc.Name)
	out.SetNamespace(svc.Namespace)
	out.SetAnnotations(ann)
	return append([]client.Object{out}, limits...), nil
}

// accrual sets the failure-accrual annotations of od, whose
// consecutive5xxErrors is set.
func accrual(ann map[string]string, od *meshv1alpha1.OutlierDetection) {
	ann[FailureAccrualAnnotation] = failureAccrualConsecutive
	ann[MaxFailuresAnnotation] = strconv.Itoa(int(*od.Consecutive5xxErrors))
	if od.BaseEjectionTime != nil {
		base := od.BaseEjectionTime.Duration
		ann[MinPenaltyAnnotation] = linkerdDuration(base)
		if base > defaultMaxPenalty {
			ann[MaxPenaltyAnnotation] = linkerdDuration(base)
		}
	}
}

// routeAnnotations sets the retry and timeout annotations of rp.
func routeAnnotations(ann map[string]string, rp *meshv1alpha1.ResiliencePolicy) error {
	if r := rp.Spec.Retries; r != nil {
		if err := retryAnnotations(ann, &r.RetryPolicy, "spec.retries.retryOn"); err != nil {
			return err
		}
	}
	if t := rp.Spec.Timeouts; t != nil {
		if t.Request != nil {
			ann[RequestTimeoutAnnotation] = linkerdDuration(t.Request.Duration)
		}
		if t.Idle != nil {
			ann[IdleTimeoutAnnotation] = linkerdDuration(t.Idle.Duration)
		}
	}
	return nil
}

// retryAnnotations sets Linkerd's retry annotations of r: the limit, the
// HTTP and gRPC conditions (5xx when none is given) and the per-try
// timeout. field, when set, names retryOn in messages.
func retryAnnotations(ann map[string]string, r *meshv1alpha1.RetryPolicy, field string) error {
	ann[RetryLimitAnnotation] = strconv.Itoa(int(r.Attempts))
	var httpOn, grpcOn []string
	for _, c := range r.RetryOn {
		switch {
		case httpRetryOn[c] != "":
			httpOn = append(httpOn, httpRetryOn[c])
		case grpcRetryOn[c] != "":
			grpcOn = append(grpcOn, grpcRetryOn[c])
		default:
			if field != "" {
				field += ": "
			}
			return &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd, Features: []mesh.Capability{mesh.CapRetryConditions},
				Detail: fmt.Sprintf("%sretry condition %s: Linkerd retries on HTTP statuses (5xx, GatewayError, Retriable4xx) and gRPC statuses (Unavailable, Cancelled, DeadlineExceeded) only", field, c)}
		}
	}
	if len(httpOn) == 0 && len(grpcOn) == 0 {
		httpOn = []string{"5xx"}
	}
	if len(httpOn) > 0 {
		ann[RetryHTTPAnnotation] = strings.Join(httpOn, ",")
	}
	if len(grpcOn) > 0 {
		ann[RetryGRPCAnnotation] = strings.Join(grpcOn, ",")
	}
	if r.PerTryTimeout != nil {
		ann[RetryTimeoutAnnotation] = linkerdDuration(r.PerTryTimeout.Duration)
	}
	return nil
}

// linkerdDuration renders d as Linkerd's policy controller parses a
// duration: one number and one unit (ms, s, m, h), so "1s500ms" is
// written 1500ms; a fraction of a millisecond rounds up.
func linkerdDuration(d time.Duration) string {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	if ms <= 0 {
		ms = 1
	}
	for _, u := range []struct {
		n    int64
		unit string
	}{{3600000, "h"}, {60000, "m"}, {1000, "s"}} {
		if ms%u.n == 0 {
			return strconv.FormatInt(ms/u.n, 10) + u.unit
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

func hasRetryOrTimeout(ann map[string]string) bool {
	for k := range ann {
		if strings.HasPrefix(k, "retry.linkerd.io/") || strings.HasPrefix(k, "timeout.linkerd.io/") {
			return true
		}
	}
	return false
}

// ComposeRoute sets rp's retries and timeouts as Linkerd annotations on the
// TrafficSplit's HTTPRoute, which override the Service's (Linkerd reads a
// route's retry and timeout annotations before its parent Service's).
// Linkerd has no faults, so nothing else composes. A clash with the split's
// own retries or timeout is decided before (mesh.ClashingRouteFields); a
// policy whose fields the route cannot carry (composable) is left out, as
// its own translation refuses it.
func (*Provider) ComposeRoute(objs []client.Object, rp *meshv1alpha1.ResiliencePolicy) ([]client.Object, error) {
	for _, o := range objs {
		route, ok := o.(*gatewayv1.HTTPRoute)
		if !ok {
			continue
		}
		if composable(rp, route.Name) != nil {
			// The policy's own translation refuses it (and reports why):
			// none of it is applied, the split's route stays the split's.
			return objs, nil
		}
		ann := map[string]string{}
		if err := routeAnnotations(ann, rp); err != nil {
			return nil, err
		}
		if len(ann) == 0 {
			continue
		}
		if route.Annotations == nil {
			route.Annotations = map[string]string{}
		}
		for k, v := range ann {
			route.Annotations[k] = v
		}
	}
	return objs, nil
}

// composable refuses route-level fields of rp that the HTTPRoute of
// TrafficSplit split would carry and Linkerd ignore there: gRPC retry
// conditions (Linkerd reads retry.linkerd.io/grpc on a GRPCRoute or a
// Service, never on an HTTPRoute).
func composable(rp *meshv1alpha1.ResiliencePolicy, split string) error {
	ann := map[string]string{}
	if err := routeAnnotations(ann, rp); err != nil {
		return err
	}
	if _, grpc := ann[RetryGRPCAnnotation]; !grpc {
		return nil
	}
	return &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd, Features: []mesh.Capability{mesh.Capability(mesh.RFRetryOn)},
		Detail: fmt.Sprintf("%s spec.retries.retryOn: TrafficSplit %s routes Service %s with an HTTPRoute, which carries the retries, and Linkerd ignores %s on an HTTPRoute; retry on HTTP statuses only (5xx, GatewayError, Retriable4xx) while the split exists",
			mesh.ResilienceOwner(rp), split, rp.Spec.TargetRef.Name, RetryGRPCAnnotation)}
}

var (
	_ mesh.ResilienceTranslator = (*Provider)(nil)
	_ mesh.RouteComposer        = (*Provider)(nil)
)
