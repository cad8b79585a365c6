package linkerd

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=policy.linkerd.io,resources=httplocalratelimitpolicies,verbs=get;list;watch;create;update;patch;delete

// rateLimitRelease: HTTPLocalRateLimitPolicy came with Linkerd 2.17
// (https://linkerd.io/2.17/reference/rate-limiting/); the edge bound is the
// one of the 2.17 policy kinds (egressRelease), on the safe side.
var rateLimitRelease = release{stable: 17, edgeYear: 24, edgeMonth: 11}

// Server and HTTPLocalRateLimitPolicy as policy.linkerd.io serves them.
const (
	serverAPIVersion    = "policy.linkerd.io/v1beta3"
	rateLimitAPIVersion = "policy.linkerd.io/v1alpha1"
	rateLimitKind       = "HTTPLocalRateLimitPolicy"
)

func rateLimitKindObject() client.Object {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(rateLimitAPIVersion)
	u.SetKind(rateLimitKind)
	return u
}

// ReadInboundTargets returns the namespace's Servers (none when the
// Server kind is not installed).
func (*Provider) ReadInboundTargets(ctx context.Context, c client.Reader, namespace string) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(serverAPIVersion)
	list.SetKind("ServerList")
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	return list.Items, nil
}

// requestsPerSecond returns the local limit as Linkerd's whole requests
// per second, or a refusal naming the field, the value and the fix when
// the limit is not exactly that: Linkerd's limit is per second and its
// burst is the per-second rate.
func requestsPerSecond(l *meshv1alpha1.LocalRateLimit) (int64, error) {
	iv := l.Interval.Duration
	perSecond := int64(l.Requests) * int64(time.Second)
	if iv <= 0 || perSecond%int64(iv) != 0 {
		return 0, rateLimitRefusal(fmt.Sprintf(
			"spec.rateLimit.local: %d requests per %s is not a whole number of requests per second, and Linkerd's HTTPLocalRateLimitPolicy limits by requestsPerSecond; set interval to 1s and requests to the rate per second",
			l.Requests, l.Interval.Duration))
	}
	if l.Burst != nil && *l.Burst != l.Requests {
		return 0, rateLimitRefusal(fmt.Sprintf(
			"spec.rateLimit.local.burst %d: Linkerd's HTTPLocalRateLimitPolicy has no burst (it admits requestsPerSecond); remove burst or set it to requests (%d)",
			*l.Burst, l.Requests))
	}
	return perSecond / int64(iv), nil
}

func rateLimitRefusal(detail string) error {
	return &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd, Features: []mesh.Capability{mesh.Capability(mesh.RFLocalRateLimit)}, Detail: detail}
}

// servedPorts returns the target ports of the Service's ports the policy
// covers (its port, or every port).
func servedPorts(svc *corev1.Service, port *int32) []intstr.IntOrString {
	var out []intstr.IntOrString
	for _, p := range svc.Spec.Ports {
		if port != nil && p.Port != *port {
			continue
		}
		tp := p.TargetPort
		if tp.Type == intstr.Int && tp.IntVal == 0 {
			tp = intstr.FromInt32(p.Port)
		}
		out = append(out, tp)
	}
	return out
}

// MatchServer returns the name of the Server among servers whose
// podSelector selects exactly the pods of selector (matchLabels equal to
// it, no expressions) and whose port is target (the same number, or the
// same name); "" when none does. Of several, the first by name.
func MatchServer(servers []unstructured.Unstructured, selector map[string]string, target intstr.IntOrString) string {
	var names []string
	for i := range servers {
		s := &servers[i]
		labels, _, _ := unstructured.NestedStringMap(s.Object, "spec", "podSelector", "matchLabels")
		exprs, _, _ := unstructured.NestedSlice(s.Object, "spec", "podSelector", "matchExpressions")
		if len(selector) == 0 || len(exprs) > 0 || !maps.Equal(labels, selector) {
			continue
		}
		port, ok, _ := unstructured.NestedFieldNoCopy(s.Object, "spec", "port")
		if !ok || !samePort(port, target) {
			continue
		}
		names = append(names, s.GetName())
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}

func samePort(port any, target intstr.IntOrString) bool {
	switch v := port.(type) {
	case string:
		return target.Type == intstr.String && v == target.StrVal
	case int64:
		return target.Type == intstr.Int && v == int64(target.IntVal)
	case float64:
		return target.Type == intstr.Int && v == float64(target.IntVal)
	}
	return false
}

// rateLimitPolicies returns one HTTPLocalRateLimitPolicy per Server that
// covers a port of the policy's target, each limiting the Server's
// inbound requests to the policy's rate; a port no Server covers is
// refused: a new Server changes what the port admits, so Meshplane does
// not create one.
func rateLimitPolicies(in mesh.ResilienceInput) ([]client.Object, error) {
	rp, svc := in.Policy, in.Service
	rps, err := requestsPerSecond(&rp.Spec.RateLimit.Local)
	if err != nil {
		return nil, err
	}
	var out []client.Object
	seen := map[string]bool{}
	for _, target := range servedPorts(svc, rp.Spec.TargetRef.Port) {
		server := MatchServer(in.InboundTargets, svc.Spec.Selector, target)
		if server == "" {
			return nil, rateLimitRefusal(fmt.Sprintf(
				"spec.rateLimit.local: Linkerd limits rates inbound with an HTTPLocalRateLimitPolicy on a Server, and no Server in namespace %s selects exactly the pods of Service %s (podSelector.matchLabels %v) on port %s; "+
					"Meshplane does not create a Server (a new Server changes which traffic the port admits): create one for those pods and that port, then update the policy (Servers are read when the policy is reconciled)",
				svc.Namespace, svc.Name, svc.Spec.Selector, target.String()))
		}
		if seen[server] {
			continue
		}
		seen[server] = true
		u := rateLimitKindObject().(*unstructured.Unstructured)
		u.SetName(rp.Name + "-" + server)
		u.SetNamespace(rp.Namespace)
		u.Object["spec"] = map[string]any{
			"targetRef": map[string]any{"group": PolicyGroup, "kind": "Server", "name": server},
			"total":     map[string]any{"requestsPerSecond": rps},
		}
		out = append(out, u)
	}
	return out, nil
}

var _ mesh.InboundTargetReader = (*Provider)(nil)
