package istio

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Ambient mode: labels and the waypoint class Istio reads.
// Sources: https://istio.io/latest/docs/ambient/usage/waypoint/ and
// https://istio.io/latest/docs/ambient/usage/l7-features/.
const (
	// UseWaypointLabel on a namespace or Service names the waypoint that
	// handles its traffic; "none" on a Service opts it out.
	UseWaypointLabel = "istio.io/use-waypoint"
	// WaypointForLabel on a waypoint Gateway says which traffic it handles:
	// service (the default), workload, all or none.
	WaypointForLabel = "istio.io/waypoint-for"
	// WaypointClass is the GatewayClass of Istio's waypoints.
	WaypointClass = "istio-waypoint"
	// WaypointPort is the waypoint's HBONE listener port.
	WaypointPort = 15008
	// waypointNone opts a Service out of its namespace's waypoint.
	waypointNone = "none"
)

// Waypoints are read for the namespace facts; Meshplane does not write
// them.
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch

// DataPlaneKinds returns the Gateway API Gateway and the Service: a
// waypoint appearing, disappearing or changing what it serves, and a
// Service's use-waypoint label, change the namespace's facts.
func (*Provider) DataPlaneKinds() []client.Object {
	return []client.Object{
		&gatewayv1.Gateway{TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"}},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}},
	}
}

// DataPlaneObject reports whether o is a waypoint (a Gateway of class
// istio-waypoint) or a Service with a use-waypoint label.
func (*Provider) DataPlaneObject(o client.Object) bool {
	switch v := o.(type) {
	case *gatewayv1.Gateway:
		return v.Spec.GatewayClassName == WaypointClass
	case *corev1.Service:
		_, ok := v.Labels[UseWaypointLabel]
		return ok
	}
	return false
}

// ReadNamespaceFacts reads the namespace's data-plane mode (the same
// precedence as NamespaceMembership: sidecar injection wins over ambient)
// and, for an ambient namespace, its use-waypoint labels, those of its
// Services and the waypoints (Gateways of class istio-waypoint) in it. A
// cluster without the Gateway API has no waypoints.
func (p *Provider) ReadNamespaceFacts(ctx context.Context, r client.Reader, ns string) (mesh.NamespaceFacts, error) {
	f := mesh.NamespaceFacts{Name: ns, Mode: mesh.Sidecar}
	var n corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		return f, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	previous, moving, err := mesh.PreviousDataPlane(ns, n.Annotations)
	if err != nil {
		return f, err
	}
	if p.NamespaceMembership(&n).Profile != meshv1alpha1.ProfileAmbient {
		return f, nil
	}
	f.Mode = mesh.Ambient
	if moving {
		f.Previous = previous
	}
	f.Waypoint = n.Labels[UseWaypointLabel]
	var svcs corev1.ServiceList
	if err := r.List(ctx, &svcs, client.InNamespace(ns)); err != nil {
		return f, fmt.Errorf("listing Services of namespace %s: %w", ns, err)
	}
	for _, s := range svcs.Items {
		if w, ok := s.Labels[UseWaypointLabel]; ok {
			if f.WaypointFor == nil {
				f.WaypointFor = map[string]string{}
			}
			f.WaypointFor[s.Name] = w
		}
	}
	var gws gatewayv1.GatewayList
	if err := r.List(ctx, &gws, client.InNamespace(ns)); err != nil {
		if meta.IsNoMatchError(err) {
			return f, nil
		}
		return f, fmt.Errorf("listing Gateways of namespace %s: %w", ns, err)
	}
	for _, g := range gws.Items {
		if g.Spec.GatewayClassName != WaypointClass || !g.DeletionTimestamp.IsZero() {
			continue
		}
		if f.Waypoints == nil {
			f.Waypoints = map[string]mesh.WaypointFacts{}
		}
		forWhat := g.Labels[WaypointForLabel]
		if forWhat == "" {
			forWhat = "service"
		}
		f.Waypoints[g.Name] = mesh.WaypointFacts{For: forWhat,
			Programmed: meta.IsStatusConditionTrue(g.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))}
	}
	return f, nil
}

// EnableWaypointHint says how to give namespace ns a waypoint.
func EnableWaypointHint(ns string) string {
	return fmt.Sprintf("enable a waypoint for namespace %s (a Gateway of class %s with listener port %d protocol HBONE, "+
		"and the label %s=<gateway> on the namespace)", ns, WaypointClass, WaypointPort, UseWaypointLabel)
}

// serviceWaypoint returns the waypoint that serves Service svc's traffic,
// or why none does. Istio reads the Service's own use-waypoint label
// first, then the namespace's; the waypoint must exist and handle service
// traffic (waypoint-for service or all).
func serviceWaypoint(f mesh.NamespaceFacts, svc string) (string, string) {
	name, source := f.Waypoint, "namespace label "+UseWaypointLabel
	if w, ok := f.WaypointFor[svc]; ok {
		name, source = w, "Service label "+UseWaypointLabel
	}
	if name == "" || name == waypointNone {
		return "", fmt.Sprintf("namespace %s is ambient and no waypoint serves Service %s", f.Name, svc)
	}
	w, ok := f.Waypoints[name]
	if !ok {
		return "", fmt.Sprintf("namespace %s is ambient and no waypoint serves Service %s (%s names waypoint %s, "+
			"but no Gateway %s of class %s exists in the namespace)", f.Name, svc, source, name, name, WaypointClass)
	}
	if w.For != "service" && w.For != "all" {
		return "", fmt.Sprintf("namespace %s is ambient and no waypoint serves Service %s (waypoint %s has %s=%s; it must be service or all)",
			f.Name, svc, name, WaypointForLabel, w.For)
	}
	return name, ""
}

// serviceWaypoints returns every waypoint that serves Service traffic in
// the namespace (the namespace's and the Services' own), sorted.
func serviceWaypoints(f mesh.NamespaceFacts) []string {
	names := []string{f.Waypoint}
	for _, w := range f.WaypointFor {
		names = append(names, w)
	}
	var out []string
	for _, n := range names {
		w, ok := f.Waypoints[n]
		if ok && (w.For == "service" || w.For == "all") && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func refuseAmbient(format string, args ...any) error {
	return outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason, format, args...)
}

// TranslateTrafficSplitIn translates ts for a namespace: in sidecar mode
// as TranslateTrafficSplit; in ambient mode as a Gateway API HTTPRoute
// whose parent is the root Service, which the Service's waypoint enforces
// (Istio documents Gateway API as the routing API of ambient; ztunnel
// applies no L7 routing, so a VirtualService there would be accepted and
// ignored). Without a waypoint serving the root Service the split is
// refused.
func (p *Provider) TranslateTrafficSplitIn(ts *meshv1alpha1.TrafficSplit, f mesh.NamespaceFacts) ([]client.Object, error) {
	if f.Mode != mesh.Ambient {
		return p.TranslateTrafficSplit(ts)
	}
	if err := mesh.Check(p, mesh.TrafficSplitRequirements(&ts.Spec)...); err != nil {
		return nil, err
	}
	if _, why := serviceWaypoint(f, ts.Spec.Service.Name); why != "" {
		return nil, refuseAmbient("%s: L7 routing in ambient mode is enforced by a waypoint; %s (nothing was applied)", why, EnableWaypointHint(f.Name))
	}
	if req := mesh.RetryRequirements(ts.Spec.Retries); len(req) > 0 {
		return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: req,
			Detail: "in ambient namespace " + f.Name + " routes are Gateway API HTTPRoutes, and HTTPRoute retries are not in Gateway API's standard channel"}
	}
	route, err := gamma.HTTPRoute(ts, p.Name())
	if err != nil {
		return nil, err
	}
	return []client.Object{route}, nil
}

// l7Rules returns the indexes of the rules that match HTTP methods or
// paths, or request tokens (spec.jwt).
func l7Rules(pol *meshv1alpha1.ZeroTrustPolicy) []string {
	var out []string
	for i, r := range pol.Spec.Rules {
		if mesh.HasJWTConditions(r) || slices.ContainsFunc(r.To, func(t meshv1alpha1.TrafficDestination) bool { return len(t.Methods) > 0 || len(t.Paths) > 0 }) {
			out = append(out, fmt.Sprintf("spec.rules[%d]", i))
		}
	}
	return out
}

// translateZeroTrustPolicyIn translates pol for a namespace: in sidecar
// mode as TranslateZeroTrustPolicy. In ambient mode, following
// https://istio.io/latest/docs/ambient/usage/l4-policy/ and
// https://istio.io/latest/docs/ambient/usage/l7-features/:
//
//   - PeerAuthentication is the same object: ztunnel enforces STRICT
//     (plain text to the workload is refused) and PERMISSIVE (accepted);
//     DISABLE is not supported in ambient and Meshplane never emits it, nor
//     port-level modes
//     (https://istio.io/latest/docs/reference/config/security/peer_authentication/).
//   - The selector-bound ALLOW AuthorizationPolicy is enforced by the
//     destination's ztunnel, which matches identities, namespaces and
//     ports only: an ALLOW rule with methods or paths would never match.
//     It keeps the L4 rules.
//   - With a waypoint, requests to Services reach the workload from the
//     waypoint's identity, so the ztunnel policy also allows the waypoint's
//     service account (named like its Gateway), and every rule, L4 and L7,
//     is enforced at the waypoint by a second ALLOW policy, <name>-waypoint,
//     bound with targetRefs to each waypoint Gateway of the namespace.
//   - L7 rules without a waypoint are refused, and so is a workload
//     selector with rules when a waypoint serves the namespace: a waypoint
//     policy binds to Services or waypoints, not to workload labels.
func (p *Provider) translateZeroTrustPolicyIn(pol *meshv1alpha1.ZeroTrustPolicy, f mesh.NamespaceFacts) ([]client.Object, error) {
	if f.Mode == mesh.Ambient && mesh.Audit(&pol.Spec) {
		return nil, refuseAmbientAudit(f)
	}
	out, err := p.TranslateZeroTrustPolicy(pol)
	if err != nil || f.Mode != mesh.Ambient || pol.Spec.DefaultAction == meshv1alpha1.ActionAllow || len(pol.Spec.Rules) == 0 {
		return out, err
	}
	ambient, err := p.ambientPolicy(pol, f, out)
	if err != nil || f.Previous != mesh.Sidecar {
		return ambient, err
	}
	return besideSidecar(out, ambient), nil
}

// WaypointPolicySuffix names the waypoint-bound form of a policy beside
// its workload-bound one: <name>-waypoint.
const WaypointPolicySuffix = "-waypoint"

// ambientPolicy is the ambient form of pol, whose sidecar form is out.
func (p *Provider) ambientPolicy(pol *meshv1alpha1.ZeroTrustPolicy, f mesh.NamespaceFacts, out []client.Object) ([]client.Object, error) {
	waypoints := serviceWaypoints(f)
	l7 := l7Rules(pol)
	if len(waypoints) == 0 {
		if len(l7) > 0 {
			return nil, refuseAmbient("namespace %s is ambient and no waypoint serves it: %s match HTTP methods or paths, which only a waypoint enforces "+
				"(ztunnel matches identities, namespaces and ports); %s, or remove the methods and paths (nothing was applied)",
				f.Name, strings.Join(l7, ", "), EnableWaypointHint(f.Name))
		}
		return out, nil
	}
	if s := pol.Spec.Selector; s != nil && len(s.MatchLabels) > 0 {
		return nil, refuseAmbient("spec.selector: namespace %s is ambient and requests to its Services pass waypoint %s, where a policy binds to the waypoint "+
			"or a Service, not to workload labels, so the rules would not hold for them; remove spec.selector to apply the policy to the whole namespace "+
			"(nothing was applied)", f.Name, strings.Join(waypoints, ", "))
	}
	ap := out[1].(*istiosecurity.AuthorizationPolicy)
	return []client.Object{out[0], ztunnelPolicy(ap, pol, waypoints), waypointPolicy(ap, waypoints)}, nil
}

// ztunnelPolicy is the selector-bound policy ap without its L7 rules, plus
// a rule that allows the waypoints' identities.
func ztunnelPolicy(ap *istiosecurity.AuthorizationPolicy, pol *meshv1alpha1.ZeroTrustPolicy, waypoints []string) *istiosecurity.AuthorizationPolicy {
	z := ap.DeepCopy()
	l7 := l7Rules(pol)
	z.Spec.Rules = nil
	for i, r := range ap.DeepCopy().Spec.Rules {
		if !slices.Contains(l7, fmt.Sprintf("spec.rules[%d]", i)) {
			z.Spec.Rules = append(z.Spec.Rules, r)
		}
	}
	var sas []string
	for _, w := range waypoints {
		sas = append(sas, QualifiedServiceAccount(pol.Namespace, w))
	}
	z.Spec.Rules = append(z.Spec.Rules, &securityv1beta1.Rule{From: []*securityv1beta1.Rule_From{{Source: &securityv1beta1.Source{ServiceAccounts: sas}}}})
	return z
}

// waypointPolicy is ap with every rule, bound to the waypoints instead of
// workloads.
func waypointPolicy(ap *istiosecurity.AuthorizationPolicy, waypoints []string) *istiosecurity.AuthorizationPolicy {
	w := ap.DeepCopy()
	w.Name = ap.Name + WaypointPolicySuffix
	w.Spec.Selector = nil
	for _, name := range waypoints {
		w.Spec.TargetRefs = append(w.Spec.TargetRefs, &typev1beta1.PolicyTargetReference{
			Group: gatewayv1.GroupName, Kind: "Gateway", Name: name})
	}
	return w
}

var (
	_ mesh.DataPlaneReader            = (*Provider)(nil)
	_ mesh.DataPlaneTrafficTranslator = (*Provider)(nil)
	_ mesh.DataPlanePolicyTranslator  = (*Provider)(nil)
)
