package istio

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=networking.istio.io,resources=serviceentries;sidecars,verbs=get;list;watch;create;update;patch;delete

// UseWaypointNamespaceLabel on a ServiceEntry names the namespace of the
// waypoint its use-waypoint label names, when it is not the entry's own.
const UseWaypointNamespaceLabel = "istio.io/use-waypoint-namespace"

// cidrHostSuffix is the placeholder host domain of a ServiceEntry that
// matches by address (Istio requires hosts; with addresses and TCP ports
// they are only a name).
const cidrHostSuffix = "egress.meshplane.invalid"

// egressConditions document where Istio enforces EgressPolicy and JWT
// request authentication. Like the waypoint condition of L7 rules they are
// decided by the translations (TranslateEgressPolicy,
// TranslateZeroTrustPolicyIn), which read the namespace's waypoints and
// name the field to change.
func egressConditions() []mesh.Condition {
	doc := func(caps []mesh.Capability, text string) mesh.Condition {
		return mesh.Condition{Capabilities: caps, Doc: text,
			Holds: func(mesh.Scope) bool { return true }, Fix: func(mesh.Scope) string { return "" }}
	}
	return []mesh.Condition{
		doc([]mesh.Capability{mesh.CapEgressAllowList, mesh.CapEgressPerWorkload},
			"sidecar namespaces (ztunnel does not enforce outboundTrafficPolicy)"),
		doc([]mesh.Capability{mesh.CapEgressGateway}, "ambient namespaces: a waypoint named by spec.gateway.name; sidecar namespaces: the egress gateway Service named by spec.gateway.name (HTTP on 80, TLS on 443, exact hosts)"),
		doc(mesh.JWTCapabilities, "ambient namespaces: a waypoint that serves the namespace"),
	}
}

// EgressOutputKinds returns ServiceEntry and Sidecar, and the egress
// gateway chain: Gateway, DestinationRule and VirtualService.
func (*Provider) EgressOutputKinds() []client.Object {
	return []client.Object{
		&istionetworking.ServiceEntry{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "ServiceEntry"}},
		&istionetworking.Sidecar{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "Sidecar"}},
		&istionetworking.Gateway{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "Gateway"}},
		&istionetworking.DestinationRule{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "DestinationRule"}},
		&istionetworking.VirtualService{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "VirtualService"}},
	}
}

// TranslateEgressPolicy returns one ServiceEntry per rule (MESH_EXTERNAL,
// exported to the policy's namespace only) and, in a sidecar namespace, a
// Sidecar whose outboundTrafficPolicy is REGISTRY_ONLY (AllowList: a
// destination no ServiceEntry or Service names is sent to Istio's
// BlackHoleCluster) or ALLOW_ANY (Audit: it passes through
// PassthroughCluster, which Istio's metrics name).
//
//   - Exact hosts resolve by DNS; a rule with a wildcard host resolves
//     nothing (the proxy forwards to the address the client resolved), as
//     Istio requires for wildcards.
//   - cidrs become addresses of a ServiceEntry with a placeholder host.
//   - TCP to host names is refused: Istio matches opaque TCP by address and
//     port only, so a TCP ServiceEntry without addresses would open the
//     port to every destination.
//   - spec.gateway in a sidecar namespace routes the rules' hosts through
//     the user's egress gateway (egressGatewayObjects: Gateway,
//     DestinationRule, VirtualServices); what it cannot route (CIDRs, TCP,
//     wildcards, other ports) is refused per field.
//
// In an ambient namespace outboundTrafficPolicy is not enforced (ztunnel
// has no Sidecar resource), so AllowList is refused; Audit registers the
// hosts, and spec.gateway.name binds them to a waypoint with the
// istio.io/use-waypoint label, which then carries and observes their
// traffic.
func (p *Provider) TranslateEgressPolicy(pol *meshv1alpha1.EgressPolicy, f mesh.NamespaceFacts) ([]client.Object, error) {
	if err := mesh.Check(p, mesh.EgressPolicyRequirements(&pol.Spec)...); err != nil {
		return nil, err
	}
	if err := p.checkEgress(pol, f); err != nil {
		return nil, err
	}
	var objs []client.Object
	for i, r := range pol.Spec.Rules {
		se := serviceEntry(pol, r, i, f)
		// Zero enum values are left out of Istio's JSON; they are written
		// out so that Meshplane owns them (a change by another writer is
		// drift it repairs).
		u, err := explicit(se, map[string]string{"location": se.Spec.Location.String(), "resolution": se.Spec.Resolution.String()})
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	if f.Mode != mesh.Ambient {
		sc := egressSidecar(pol)
		u, err := explicit(sc, nil)
		if err != nil {
			return nil, err
		}
		if err := unstructured.SetNestedField(u.Object, sc.Spec.OutboundTrafficPolicy.Mode.String(), "spec", "outboundTrafficPolicy", "mode"); err != nil {
			return nil, err
		}
		objs = append(objs, u)
		if pol.Spec.Gateway != nil {
			gw, err := egressGatewayObjects(pol)
			if err != nil {
				return nil, err
			}
			objs = append(objs, gw...)
		}
	}
	if err := mesh.CheckEgressOutputs(pol, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// checkEgress refuses what Istio cannot enforce in the namespace.
func (p *Provider) checkEgress(pol *meshv1alpha1.EgressPolicy, f mesh.NamespaceFacts) error {
	spec := &pol.Spec
	if s := spec.Selector; s != nil && len(s.MatchExpressions) > 0 {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressPerWorkload},
			Detail: "spec.selector: Istio workload selectors take matchLabels only; express the selector with matchLabels"}
	}
	if f.Mode == mesh.Ambient {
		return p.checkAmbientEgress(pol, f)
	}
	if spec.Gateway != nil {
		return p.checkSidecarGateway(pol)
	}
	return nil
}

func (p *Provider) checkAmbientEgress(pol *meshv1alpha1.EgressPolicy, f mesh.NamespaceFacts) error {
	spec := &pol.Spec
	if mesh.EgressMode(spec) == meshv1alpha1.EgressAllowList {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressAllowList},
			Where: "Istio in namespace " + f.Name + " (Ambient data plane)",
			Detail: "ztunnel sends traffic to destinations no ServiceEntry names straight out (outboundTrafficPolicy is a sidecar setting), " +
				"so Istio cannot block them there",
			Fix: "use spec.mode Audit, enrol the namespace in sidecar mode (istio-injection=enabled), or block egress with the CNI's network policy"}
	}
	if s := spec.Selector; s != nil && len(s.MatchLabels) > 0 {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressPerWorkload},
			Detail: "spec.selector: in ambient namespace " + f.Name + " ServiceEntries apply to the whole namespace; remove spec.selector"}
	}
	g := spec.Gateway
	if g == nil {
		return nil
	}
	if g.Name == "" {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressGateway},
			Detail: "spec.gateway: Istio routes egress through a waypoint named by spec.gateway.name; nodeSelector and egressIP are Cilium's"}
	}
	if g.Namespace == "" || g.Namespace == pol.Namespace {
		if w, ok := f.Waypoints[g.Name]; !ok || (w.For != "service" && w.For != "all") {
			return refuseAmbient("spec.gateway.name: namespace %s has no waypoint %s for service traffic (a Gateway of class %s with %s service or all); "+
				"create it or name another (nothing was applied)", f.Name, g.Name, WaypointClass, WaypointForLabel)
		}
	}
	return nil
}

// serviceEntry is the ServiceEntry of rule i.
func serviceEntry(pol *meshv1alpha1.EgressPolicy, r meshv1alpha1.EgressRule, i int, f mesh.NamespaceFacts) *istionetworking.ServiceEntry {
	name := pol.Name + "-" + mesh.EgressRuleName(r, i)
	spec := &networkingv1alpha3.ServiceEntry{
		Location: networkingv1alpha3.ServiceEntry_MESH_EXTERNAL,
		ExportTo: []string{"."},
	}
	switch {
	case len(r.CIDRs) > 0:
		spec.Hosts = []string{mesh.EgressRuleName(r, i) + "." + pol.Name + "." + cidrHostSuffix}
		spec.Addresses = r.CIDRs
		spec.Resolution = networkingv1alpha3.ServiceEntry_NONE
	case hasWildcard(r.Hosts):
		spec.Hosts = r.Hosts
		spec.Resolution = networkingv1alpha3.ServiceEntry_NONE
	default:
		spec.Hosts = r.Hosts
		spec.Resolution = networkingv1alpha3.ServiceEntry_DNS
	}
	for _, port := range r.Ports {
		spec.Ports = append(spec.Ports, &networkingv1alpha3.ServicePort{
			Number: uint32(port.Number), Protocol: string(port.Protocol),
			Name: fmt.Sprintf("%s-%d", strings.ToLower(string(port.Protocol)), port.Number)})
	}
	se := &istionetworking.ServiceEntry{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "ServiceEntry"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pol.Namespace},
	}
	se.Spec.Hosts, se.Spec.Addresses, se.Spec.Resolution = spec.Hosts, spec.Addresses, spec.Resolution
	se.Spec.Location, se.Spec.ExportTo, se.Spec.Ports = spec.Location, spec.ExportTo, spec.Ports
	if g := pol.Spec.Gateway; g != nil && f.Mode == mesh.Ambient && g.Name != "" {
		se.Labels = map[string]string{UseWaypointLabel: g.Name}
		if g.Namespace != "" && g.Namespace != pol.Namespace {
			se.Labels[UseWaypointNamespaceLabel] = g.Namespace
		}
	}
	return se
}

func hasWildcard(hosts []string) bool {
	for _, h := range hosts {
		if mesh.IsWildcardHost(h) {
			return true
		}
	}
	return false
}

// egressSidecar is the Sidecar that sets the outbound traffic policy of the
// selected workloads (the whole namespace without a selector).
func egressSidecar(pol *meshv1alpha1.EgressPolicy) *istionetworking.Sidecar {
	mode := networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY
	if mesh.EgressMode(&pol.Spec) == meshv1alpha1.EgressAudit {
		mode = networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY
	}
	sc := &istionetworking.Sidecar{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "Sidecar"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name, Namespace: pol.Namespace},
		Spec:       networkingv1alpha3.Sidecar{OutboundTrafficPolicy: &networkingv1alpha3.OutboundTrafficPolicy{Mode: mode}},
	}
	if s := pol.Spec.Selector; s != nil && len(s.MatchLabels) > 0 {
		sc.Spec.WorkloadSelector = &networkingv1alpha3.WorkloadSelector{Labels: s.MatchLabels}
	}
	return sc
}

// explicit returns obj as unstructured with the given spec fields set.
func explicit(obj client.Object, spec map[string]string) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(b, &u.Object); err != nil {
		return nil, err
	}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	for k, v := range spec {
		if err := unstructured.SetNestedField(u.Object, v, "spec", k); err != nil {
			return nil, err
		}
	}
	return u, nil
}

var _ mesh.EgressTranslator = (*Provider)(nil)

// relaxEgress relaxes what an EgressPolicy, a ProxyPolicy or a JWT policy
// wrote (a BreakGlass): a Sidecar's outbound traffic policy becomes
// ALLOW_ANY (the allow-list is lifted), its egress listeners one listener
// for every host "*/*" (a ProxyPolicy's egressScope is lifted), and a RequestAuthentication loses its jwtRules (no
// token is validated, so none is rejected; the AuthorizationPolicy is
// relaxed separately). spec is a copy the caller owns.
func relaxEgress(kind any, spec map[string]any) (map[string]any, bool) {
	switch kind {
	case "Sidecar":
		changed := false
		if otp, _ := spec["outboundTrafficPolicy"].(map[string]any); otp != nil && otp["mode"] != networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY.String() {
			otp["mode"] = networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY.String()
			changed = true
		}
		// A ProxyPolicy's egressScope: a proxy that does not know a
		// service sends to it in plain text (passthrough), which a
		// STRICT-mTLS destination refuses; the widened scope knows every
		// service.
		if eg, _ := spec["egress"].([]any); len(eg) > 0 && !reflect.DeepEqual(eg, everyHost()) {
			spec["egress"] = everyHost()
			changed = true
		}
		if !changed {
			return nil, false // inherits the mesh's policy; nothing Meshplane set
		}
		return spec, true
	case "RequestAuthentication":
		if _, ok := spec["jwtRules"]; !ok {
			return nil, false
		}
		delete(spec, "jwtRules")
		return spec, true
	}
	return nil, false
}

// everyHost is the egress of a Sidecar whose scope is every service.
func everyHost() []any { return []any{map[string]any{"hosts": []any{"*/*"}}} }
