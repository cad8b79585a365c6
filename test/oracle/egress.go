package oracle

import (
	"encoding/json"
	"net/netip"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Egress models: what each mesh lets a workload reach outside the cluster,
// evaluated on the objects Meshplane generates for an EgressPolicy, and
// the intent, for clients that speak the protocol the rule's port names
// (the protocol says how the mesh recognises the destination: Host, SNI,
// address).
//
//   - Istio (sidecar): with outboundTrafficPolicy ALLOW_ANY every
//     destination passes (PassthroughCluster); with REGISTRY_ONLY only a
//     destination a ServiceEntry names on a port of the same protocol
//     (hosts: exact, or *.domain for any subdomain; TCP: addresses)
//     (https://istio.io/latest/docs/reference/config/networking/sidecar/#OutboundTrafficPolicy,
//     https://istio.io/latest/docs/reference/config/networking/service-entry/).
//   - Linkerd: an EgressNetwork's trafficPolicy Allow passes everything; Deny
//     only what a route attached to it on the port describes (HTTPRoute
//     hostnames; a Gateway API wildcard hostname matches any subdomain)
//     (https://linkerd.io/2/reference/egress-network/).
//   - Cilium: an endpoint with an egress rule is default-deny for egress;
//     toFQDNs (matchName, matchPattern "**.domain": any subdomain) or toCIDR
//     with toPorts allow the destination on the port
//     (https://docs.cilium.io/en/stable/security/policy/language/#dns-based).

// Destination is an external endpoint a client connects to.
type Destination struct {
	// Host is the name the client resolved and sends (Host, SNI); empty
	// for an address.
	Host string
	// Addr is the address connected to.
	Addr netip.Addr
	// Port and Protocol the client speaks.
	Port     int32
	Protocol meshv1alpha1.EgressProtocol
}

// EgressIntent reports whether the policy means d to be reachable: every
// destination in mode Audit; in AllowList one a rule names on a port of
// the client's protocol.
func EgressIntent(spec *meshv1alpha1.EgressPolicySpec, d Destination) bool {
	if spec.Mode == meshv1alpha1.EgressAudit {
		return true
	}
	for _, r := range spec.Rules {
		if !portMatches(r.Ports, d) {
			continue
		}
		for _, h := range r.Hosts {
			if hostMatches(h, d.Host) {
				return true
			}
		}
		for _, c := range r.CIDRs {
			if cidrContains(c, d.Addr) {
				return true
			}
		}
	}
	return false
}

func portMatches(ports []meshv1alpha1.EgressPort, d Destination) bool {
	for _, p := range ports {
		if p.Number == d.Port && p.Protocol == d.Protocol {
			return true
		}
	}
	return false
}

// hostMatches matches a host pattern: exact, or *.domain for any name
// ending in .domain (not domain itself).
func hostMatches(pattern, host string) bool {
	if host == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+rest)
	}
	if rest, ok := strings.CutPrefix(pattern, "**."); ok {
		return strings.HasSuffix(host, "."+rest)
	}
	return pattern == host
}

func cidrContains(c string, a netip.Addr) bool {
	p, err := netip.ParsePrefix(c)
	return err == nil && a.IsValid() && p.Contains(a)
}

// objectMaps renders objects as JSON maps (typed or unstructured alike).
func objectMaps(objs []client.Object) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			continue
		}
		m := map[string]any{}
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func list(v any) []any { l, _ := v.([]any); return l }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func num(v any) int32 { f, _ := v.(float64); return int32(f) }

// IstioEgressAllows evaluates ServiceEntries and the Sidecar's outbound
// traffic policy for d.
func IstioEgressAllows(objs []client.Object, d Destination) bool {
	ms := objectMaps(objs)
	for _, m := range ms {
		if m["kind"] == "Sidecar" {
			if obj(obj(m["spec"])["outboundTrafficPolicy"])["mode"] == "ALLOW_ANY" {
				return true
			}
		}
	}
	for _, m := range ms {
		if m["kind"] != "ServiceEntry" {
			continue
		}
		spec := obj(m["spec"])
		portOK := false
		for _, p := range list(spec["ports"]) {
			if num(obj(p)["number"]) == d.Port && obj(p)["protocol"] == string(d.Protocol) {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		if addrs := list(spec["addresses"]); len(addrs) > 0 {
			for _, a := range addrs {
				if s, _ := a.(string); cidrContains(s, d.Addr) {
					return true
				}
			}
			continue
		}
		for _, h := range list(spec["hosts"]) {
			if s, _ := h.(string); hostMatches(s, d.Host) {
				return true
			}
		}
	}
	return false
}

// LinkerdEgressAllows evaluates the EgressNetwork and the HTTPRoutes
// attached to it for d.
func LinkerdEgressAllows(objs []client.Object, d Destination) bool {
	ms := objectMaps(objs)
	for _, m := range ms {
		if m["kind"] == "EgressNetwork" && obj(m["spec"])["trafficPolicy"] == "Allow" {
			return true
		}
	}
	if d.Protocol != meshv1alpha1.EgressHTTP {
		return false
	}
	for _, m := range ms {
		if m["kind"] != "HTTPRoute" {
			continue
		}
		spec := obj(m["spec"])
		attached := false
		for _, p := range list(spec["parentRefs"]) {
			if obj(p)["kind"] == "EgressNetwork" && num(obj(p)["port"]) == d.Port {
				attached = true
			}
		}
		if !attached {
			continue
		}
		for _, h := range list(spec["hostnames"]) {
			if s, _ := h.(string); hostMatches(s, d.Host) {
				return true
			}
		}
	}
	return false
}

// CiliumEgressAllows evaluates the egress rules of the
// CiliumNetworkPolicies for an external d.
func CiliumEgressAllows(objs []client.Object, d Destination) bool {
	for _, m := range objectMaps(objs) {
		if m["kind"] != "CiliumNetworkPolicy" {
			continue
		}
		for _, r := range list(obj(m["spec"])["egress"]) {
			rule := obj(r)
			if !ciliumPort(rule, d.Port) {
				continue
			}
			for _, f := range list(rule["toFQDNs"]) {
				if name, _ := obj(f)["matchName"].(string); name != "" && name == d.Host {
					return true
				}
				if pat, _ := obj(f)["matchPattern"].(string); pat != "" && hostMatches(pat, d.Host) {
					return true
				}
			}
			for _, c := range list(rule["toCIDR"]) {
				if s, _ := c.(string); cidrContains(s, d.Addr) {
					return true
				}
			}
		}
	}
	return false
}

func ciliumPort(rule map[string]any, port int32) bool {
	for _, pr := range list(rule["toPorts"]) {
		for _, p := range list(obj(pr)["ports"]) {
			if s, _ := obj(p)["port"].(string); s == itoa(port) {
				return true
			}
		}
	}
	return false
}

func itoa(n int32) string {
	b, _ := json.Marshal(n)
	return string(b)
}
