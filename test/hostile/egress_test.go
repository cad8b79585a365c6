package hostile

import (
	"fmt"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/testenv"
)

// EgressPolicy and JWT cases: what the schema refuses (each CEL rule of
// EgressPolicy and of ZeroTrustPolicy's JWT fields, bounds, enums), what a
// mesh refuses (with the exact message, nothing written, the policy
// already Ready in the namespace untouched, another policy still Ready),
// overlapping EgressPolicies, a foreign object with an output's name, and
// a refused update of a Ready policy (previous generation kept in force).

// GoodEgressPolicy allows api.example.com over TLS on 443 (HTTP on 80 on
// Linkerd, which has no TLS routes).
func GoodEgressPolicy(ns, name string, m Mesh) *meshv1alpha1.EgressPolicy {
	port := meshv1alpha1.EgressPort{Number: 443, Protocol: meshv1alpha1.EgressTLS}
	if m == Linkerd {
		port = meshv1alpha1.EgressPort{Number: 80, Protocol: meshv1alpha1.EgressHTTP}
	}
	p := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.EgressPolicySpec{Rules: []meshv1alpha1.EgressRule{{Name: "api", Hosts: []string{"api.example.com"},
			Ports: []meshv1alpha1.EgressPort{port}}}}}
	p.Spec.Provider = Provider(m)
	return p
}

// goodJWTPolicy is GoodZeroTrustPolicy requiring any valid token of one
// issuer on its rule.
func goodJWTPolicy(ns, name string, m Mesh) *meshv1alpha1.ZeroTrustPolicy {
	p := GoodZeroTrustPolicy(ns, name, m)
	p.Spec.JWT = &meshv1alpha1.JWTSettings{Issuers: []meshv1alpha1.JWTIssuer{{Issuer: "https://auth.example.com",
		JWKSURI: "https://auth.example.com/jwks.json"}}}
	p.Spec.Rules[0].RequestPrincipals = []string{"*"}
	return p
}

// egressInventory is h.Inventory plus the egress output kinds.
func egressInventory(h *H, ns string) Inventory {
	h.Helper()
	inv := h.Inventory(ns)
	for _, o := range providers.Registry().EgressOutputKinds() {
		gvk, err := apiutil.GVKForObject(o, scheme.New())
		if err != nil {
			h.Fatalf("kind of %T: %v", o, err)
		}
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		opts := []client.ListOption{client.InNamespace(ns)}
		if gvk.Kind == "CiliumEgressGatewayPolicy" {
			opts = nil // cluster-scoped: named <namespace>-<policy>
		}
		if err := h.C.List(h.Ctx, l, opts...); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue
			}
			h.Fatalf("listing %s: %v", gvk.Kind, err)
		}
		for _, o := range l.Items {
			if o.GetNamespace() == ns || strings.HasPrefix(o.GetName(), ns+"-") {
				inv["egress:"+gvk.Kind+"/"+o.GetName()] = o.GetResourceVersion()
			}
		}
	}
	return inv
}

// sameEgress asserts nothing was created, written or removed in ns.
func sameEgress(h *H, ns string, before Inventory) {
	h.Helper()
	after := egressInventory(h, ns)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		h.Fatalf("namespace %s changed:\nbefore %v\nafter  %v", ns, before, after)
	}
}

// withReadyEgress creates a Ready EgressPolicy "first" in a fresh
// namespace of m and returns the namespace and its inventory.
func withReadyEgress(h *H, m Mesh) (string, Inventory) {
	h.Helper()
	ns := h.Namespace(m)
	first := GoodEgressPolicy(ns, "first", m)
	first.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "first"}}
	if m == Linkerd {
		first.Spec.Selector = nil
	}
	h.Create(first)
	h.Ready(first)
	return ns, egressInventory(h, ns)
}

// refusedEgress creates an EgressPolicy broken by edit and asserts the
// refusal: reason and exact message, nothing written, the Ready policy's
// outputs untouched, another EgressPolicy still reconciling. On Linkerd
// (an EgressNetwork is namespace-wide, so a second policy would be a
// Conflict) the refused policy gets its own namespace.
func refusedEgress(h *H, m Mesh, edit func(p *meshv1alpha1.EgressPolicy), reason, want string) {
	h.Helper()
	ns, before := withReadyEgress(h, m)
	if m == Linkerd {
		ns = h.Namespace(m)
		before = egressInventory(h, ns)
	}
	p := GoodEgressPolicy(ns, "bad", m)
	p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bad"}}
	if m == Linkerd {
		p.Spec.Selector = nil
	}
	edit(p)
	h.Create(p)
	exactly(h, h.Stalled(p, reason, want), want)
	sameEgress(h, ns, before)
	h.Control("EgressPolicy", m)
}

// rejectedEgress asserts the API server refuses an EgressPolicy broken by
// edit, naming every want, and that nothing was created.
func rejectedEgress(h *H, edit func(p *meshv1alpha1.EgressPolicy), want ...string) {
	h.Helper()
	ns := h.Namespace(Istio)
	before := egressInventory(h, ns)
	p := GoodEgressPolicy(ns, "bad", Istio)
	edit(p)
	h.Refused(p, want...)
	sameEgress(h, ns, before)
}

// rejectedJWT asserts the API server refuses a JWT ZeroTrustPolicy broken
// by edit, naming every want.
func rejectedJWT(h *H, edit func(p *meshv1alpha1.ZeroTrustPolicy), want ...string) {
	h.Helper()
	ns := h.Namespace(Istio)
	before := h.Inventory(ns)
	p := goodJWTPolicy(ns, "bad", Istio)
	edit(p)
	h.Refused(p, want...)
	h.Same(ns, before)
}

func egressRule(mod func(r *meshv1alpha1.EgressRule)) func(p *meshv1alpha1.EgressPolicy) {
	return func(p *meshv1alpha1.EgressPolicy) { mod(&p.Spec.Rules[0]) }
}

func init() {
	RegisterControl("EgressPolicy", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		p := GoodEgressPolicy(ns, "control", m)
		h.Create(p)
		h.Ready(p)
	})
	registerEgressSpecCases()
	registerJWTSpecCases()
	registerEgressMeshCases()
	registerEgressOverlapCases()
}

func registerEgressSpecCases() {
	spec := func(name string, edit func(p *meshv1alpha1.EgressPolicy), want ...string) {
		Register(Case{Category: "spec", Kind: "EgressPolicy", Mesh: AnyMesh, Name: name,
			Run: func(h *H) { rejectedEgress(h, edit, want...) }})
	}
	const oneOf = "a rule needs exactly one of hosts or cidrs"
	spec("hosts and cidrs in one rule", egressRule(func(r *meshv1alpha1.EgressRule) { r.CIDRs = []string{"203.0.113.0/24"} }), oneOf)
	spec("neither hosts nor cidrs", egressRule(func(r *meshv1alpha1.EgressRule) { r.Hosts = nil }), oneOf)
	spec("cidr with host bits", egressRule(func(r *meshv1alpha1.EgressRule) {
		r.Hosts, r.CIDRs, r.Ports = nil, []string{"203.0.113.5/24"}, []meshv1alpha1.EgressPort{{Number: 5432, Protocol: meshv1alpha1.EgressTCP}}
	}), "must be a network in CIDR notation with no host bits set")
	spec("cidr banana", egressRule(func(r *meshv1alpha1.EgressRule) {
		r.Hosts, r.CIDRs, r.Ports = nil, []string{"banana"}, []meshv1alpha1.EgressPort{{Number: 5432, Protocol: meshv1alpha1.EgressTCP}}
	}), "must be a network in CIDR notation")
	spec("cidrs on a TLS port", egressRule(func(r *meshv1alpha1.EgressRule) { r.Hosts, r.CIDRs = nil, []string{"203.0.113.0/24"} }),
		"cidrs match addresses, not names: their ports must have protocol TCP")
	spec("one port twice", egressRule(func(r *meshv1alpha1.EgressRule) {
		r.Ports = append(r.Ports, meshv1alpha1.EgressPort{Number: 443, Protocol: meshv1alpha1.EgressHTTP})
	}), "a port number may appear once per rule")
	spec("host with a scheme", egressRule(func(r *meshv1alpha1.EgressRule) { r.Hosts = []string{"https://api.example.com"} }), "spec.rules[0].hosts[0]")
	spec("wildcard label in the middle", egressRule(func(r *meshv1alpha1.EgressRule) { r.Hosts = []string{"api.*.example.com"} }), "spec.rules[0].hosts[0]")
	spec("bare wildcard", egressRule(func(r *meshv1alpha1.EgressRule) { r.Hosts = []string{"*"} }), "spec.rules[0].hosts[0]")
	spec("single-label host", egressRule(func(r *meshv1alpha1.EgressRule) { r.Hosts = []string{"localhost"} }), "spec.rules[0].hosts[0]")
	spec("port 0", egressRule(func(r *meshv1alpha1.EgressRule) { r.Ports[0].Number = 0 }), "spec.rules[0].ports[0].number", "greater than or equal to 1")
	spec("port 70000", egressRule(func(r *meshv1alpha1.EgressRule) { r.Ports[0].Number = 70000 }), "spec.rules[0].ports[0].number", "less than or equal to 65535")
	spec("protocol UDP", egressRule(func(r *meshv1alpha1.EgressRule) { r.Ports[0].Protocol = "UDP" }), "spec.rules[0].ports[0].protocol", `Unsupported value: "UDP"`)
	spec("mode Block", func(p *meshv1alpha1.EgressPolicy) { p.Spec.Mode = "Block" }, "spec.mode", `Unsupported value: "Block"`)
	spec("33 rules", func(p *meshv1alpha1.EgressPolicy) {
		for i := range 32 {
			r := p.Spec.Rules[0]
			r.Name = fmt.Sprintf("r%d", i)
			p.Spec.Rules = append(p.Spec.Rules, r)
		}
	}, "spec.rules", "must have at most 32 items")
	spec("gateway without name or nodeSelector", func(p *meshv1alpha1.EgressPolicy) {
		p.Spec.Gateway = &meshv1alpha1.EgressGateway{Namespace: "istio-egress"}
	},
		"an egress gateway needs name (Istio: a waypoint) or nodeSelector (Cilium: gateway nodes)")
	spec("gateway nodes without cidrs", func(p *meshv1alpha1.EgressPolicy) {
		p.Spec.Gateway = &meshv1alpha1.EgressGateway{NodeSelector: map[string]string{"egress": "true"}}
	}, "gateway.nodeSelector routes cidrs through gateway nodes: add a rule with cidrs")
	spec("IPv6 egressIP", func(p *meshv1alpha1.EgressPolicy) {
		p.Spec.Gateway = &meshv1alpha1.EgressGateway{Name: "egress", EgressIP: "2001:db8::1"}
	}, "egressIP must be an IPv4 address")
}

func registerJWTSpecCases() {
	spec := func(name string, edit func(p *meshv1alpha1.ZeroTrustPolicy), want ...string) {
		Register(Case{Category: "spec", Kind: "ZeroTrustPolicy", Mesh: AnyMesh, Name: "jwt: " + name,
			Run: func(h *H) { rejectedJWT(h, edit, want...) }})
	}
	spec("requestPrincipals without spec.jwt", func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.JWT = nil },
		"rules with requestPrincipals or claims need spec.jwt (the issuers whose tokens are validated)")
	spec("jwksURI and jwks", func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.JWT.Issuers[0].JWKS = `{"keys":[]}` },
		"an issuer needs exactly one of jwksURI or jwks")
	spec("neither jwksURI nor jwks", func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.JWT.Issuers[0].JWKSURI = "" },
		"an issuer needs exactly one of jwksURI or jwks")
	spec("plain-text jwksURI", func(p *meshv1alpha1.ZeroTrustPolicy) {
		p.Spec.JWT.Issuers[0].JWKSURI = "http://auth.example.com/jwks.json"
	},
		"jwksURI must be an https URL")
	spec("inline jwks that is no key set", func(p *meshv1alpha1.ZeroTrustPolicy) {
		p.Spec.JWT.Issuers[0].JWKSURI, p.Spec.JWT.Issuers[0].JWKS = "", "-----BEGIN PUBLIC KEY-----"
	}, "jwks must be a JSON Web Key Set object with keys")
	spec("one issuer twice", func(p *meshv1alpha1.ZeroTrustPolicy) {
		p.Spec.JWT.Issuers = append(p.Spec.JWT.Issuers, p.Spec.JWT.Issuers[0])
	},
		"spec.jwt.issuers[1]", "Duplicate value")
	spec("claim name with brackets", func(p *meshv1alpha1.ZeroTrustPolicy) {
		p.Spec.Rules[0].Claims = []meshv1alpha1.JWTClaim{{Name: "groups][admin", Values: []string{"x"}}}
	}, "spec.rules[0].claims[0].name")
	spec("rule with nothing to match", func(p *meshv1alpha1.ZeroTrustPolicy) {
		p.Spec.Rules[0] = meshv1alpha1.AllowRule{Name: "empty"}
	}, "a rule needs from, to, requestPrincipals or claims")
	spec("empty issuer list", func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.JWT.Issuers = []meshv1alpha1.JWTIssuer{} },
		"spec.jwt.issuers")
}

// Exact refusals of the meshes (internal/mesh/<mesh>/egress.go, jwt.go).
const (
	istioTCPHostMsg    = "feature EgressTCPHosts is not supported by Istio; remove the feature from the spec or choose another provider (nothing was applied)"
	linkerdTLSMsg      = "feature EgressTLSHosts is not supported by Linkerd: spec.rules[0].ports[0]: Linkerd matches TLS by SNI through TLSRoute gateway.networking.k8s.io/v1alpha2, which Gateway API 1.5 and later no longer serve, so the route would be ignored; use protocol HTTP or another mesh; remove the feature from the spec or choose another provider (nothing was applied)"
	linkerdCIDRMsg     = "feature EgressCIDRs is not supported by Linkerd: spec.rules[0].cidrs: which of two overlapping EgressNetworks a connection uses is not defined, so an allowed network cannot be carved out of the denied rest; allow the destinations by host name; remove the feature from the spec or choose another provider (nothing was applied)"
	ciliumAuditMsg     = "feature EgressAudit is not supported by Cilium: spec.mode Audit: Cilium's policy audit mode is set for a whole agent or endpoint, not per policy; use mode AllowList, or observe egress with Hubble; remove the feature from the spec or choose another provider (nothing was applied)"
	istioGWPortMsg     = "feature EgressGateway is not supported by Istio: spec.rules[0].ports[0]: TLS on port 8443: Istio's egress gateway routes HTTP on port 80 and TLS on port 443 (TCP has no host to route by); use one of those or remove spec.gateway; remove the feature from the spec or choose another provider (nothing was applied)"
	istioGWMissingMsg  = "spec.gateway.name: egress gateway Service %s/egress does not exist; deploy the egress gateway (e.g. Istio's gateway chart) or fix spec.gateway.name/namespace (nothing was applied; re-checked when it appears)"
	jwtAlternativeTail = " are not supported by %s: the mesh validates no request tokens (JWT); validate them at an ingress gateway that does (e.g. Envoy Gateway's or Istio's ingress gateway with a JWT policy) and keep the mesh's ZeroTrustPolicy for identities; remove the feature from the spec or choose another provider (nothing was applied)"
)

func registerEgressMeshCases() {
	Register(Case{Category: "unsupported", Kind: "EgressPolicy", Mesh: Istio, Name: "TCP to a host name",
		Run: func(h *H) {
			refusedEgress(h, Istio, egressRule(func(r *meshv1alpha1.EgressRule) {
				r.Ports = []meshv1alpha1.EgressPort{{Number: 25, Protocol: meshv1alpha1.EgressTCP}}
			}), meshv1alpha1.UnsupportedFeatureReason, istioTCPHostMsg)
		}})
	Register(Case{Category: "unsupported", Kind: "EgressPolicy", Mesh: Linkerd, Name: "TLS host (no servable TLSRoute)",
		Run: func(h *H) {
			refusedEgress(h, Linkerd, egressRule(func(r *meshv1alpha1.EgressRule) {
				r.Ports = []meshv1alpha1.EgressPort{{Number: 443, Protocol: meshv1alpha1.EgressTLS}}
			}), meshv1alpha1.UnsupportedFeatureReason, linkerdTLSMsg)
		}})
	Register(Case{Category: "unsupported", Kind: "EgressPolicy", Mesh: Linkerd, Name: "cidrs",
		Run: func(h *H) {
			refusedEgress(h, Linkerd, egressRule(func(r *meshv1alpha1.EgressRule) {
				r.Hosts, r.CIDRs, r.Ports = nil, []string{"203.0.113.0/24"}, []meshv1alpha1.EgressPort{{Number: 5432, Protocol: meshv1alpha1.EgressTCP}}
			}), meshv1alpha1.UnsupportedFeatureReason, linkerdCIDRMsg)
		}})
	Register(Case{Category: "unsupported", Kind: "EgressPolicy", Mesh: Cilium, Name: "mode Audit",
		Run: func(h *H) {
			refusedEgress(h, Cilium, func(p *meshv1alpha1.EgressPolicy) { p.Spec.Mode = meshv1alpha1.EgressAudit },
				meshv1alpha1.UnsupportedFeatureReason, ciliumAuditMsg)
		}})
	Register(Case{Category: "unsupported", Kind: "EgressPolicy", Mesh: Istio, Name: "egress gateway on a port it does not route",
		Run: func(h *H) {
			ns, _ := withReadyEgress(h, Istio)
			h.Create(egressGatewayService(ns))
			before := egressInventory(h, ns)
			p := GoodEgressPolicy(ns, "bad", Istio)
			p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bad"}}
			p.Spec.Gateway = &meshv1alpha1.EgressGateway{Name: "egress"}
			p.Spec.Rules[0].Ports[0].Number = 8443
			h.Create(p)
			exactly(h, h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, istioGWPortMsg), istioGWPortMsg)
			sameEgress(h, ns, before)
			h.Control("EgressPolicy", Istio)
		}})
	Register(Case{Category: "missing-ref", Kind: "EgressPolicy", Mesh: Istio, Name: "egress gateway Service does not exist",
		Run: func(h *H) {
			ns, before := withReadyEgress(h, Istio)
			p := GoodEgressPolicy(ns, "bad", Istio)
			p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bad"}}
			p.Spec.Gateway = &meshv1alpha1.EgressGateway{Name: "egress"}
			h.Create(p)
			want := fmt.Sprintf(istioGWMissingMsg, ns)
			exactly(h, h.Stalled(p, meshv1alpha1.ReferenceNotFoundReason, want), want)
			sameEgress(h, ns, before)
			h.Control("EgressPolicy", Istio)
		}})
	Register(Case{Category: "unsupported", Kind: "EgressPolicy", Mesh: Istio, Name: "AllowList in an ambient namespace",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			before := egressInventory(h, ns)
			p := GoodEgressPolicy(ns, "bad", Istio)
			h.Create(p)
			want := "feature EgressAllowList is not supported by Istio in namespace " + ns + " (Ambient data plane): ztunnel sends traffic to destinations no ServiceEntry names straight out " +
				"(outboundTrafficPolicy is a sidecar setting), so Istio cannot block them there: use spec.mode Audit, enrol the namespace in sidecar mode (istio-injection=enabled), " +
				"or block egress with the CNI's network policy, or remove the feature from the spec (nothing was applied)"
			exactly(h, h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, want), want)
			sameEgress(h, ns, before)
			h.Control("EgressPolicy", Istio)
		}})
	for _, m := range []Mesh{Linkerd, Cilium} {
		Register(Case{Category: "unsupported", Kind: "ZeroTrustPolicy", Mesh: m, Name: "jwt names the alternative",
			Run: func(h *H) {
				ns := h.Namespace(m)
				before := h.Inventory(ns)
				p := goodJWTPolicy(ns, "bad", m)
				h.Create(p)
				c := h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "JWTAuthentication, JWTRules"+fmt.Sprintf(jwtAlternativeTail, providerName(m)))
				if !strings.HasPrefix(c.Message, "features ") {
					h.Fatalf("message %q", c.Message)
				}
				h.Same(ns, before)
				h.Control("ZeroTrustPolicy", m)
			}})
	}
}

func registerEgressOverlapCases() {
	for _, m := range []Mesh{Istio, Cilium} {
		Register(Case{Category: "overlap", Kind: "EgressPolicy", Mesh: m, Name: "two policies for the same workloads",
			Run: func(h *H) {
				ns, before := withReadyEgress(h, m)
				second := GoodEgressPolicy(ns, "second", m)
				h.Create(second)
				want := "EgressPolicy first (selector app=first) already controls the egress of workloads this policy selects (the whole namespace); " +
					"a workload has one egress allow-list — merge the rules into first, make spec.selector disjoint from first's, or delete one " +
					"(this policy is re-checked when first changes or goes away)"
				exactly(h, h.Stalled(second, meshv1alpha1.ConflictReason, want), want)
				sameEgress(h, ns, before)
				h.Control("EgressPolicy", m)
			}})
	}
	Register(Case{Category: "foreign", Kind: "EgressPolicy", Mesh: Istio, Name: "a foreign ServiceEntry has an output's name",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			foreign := &istionetworking.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Name: "bad-api", Namespace: ns}}
			foreign.Spec.Hosts = []string{"legacy.example.com"}
			foreign.Spec.Ports = []*networkingv1alpha3.ServicePort{{Number: 443, Name: "tls", Protocol: "TLS"}}
			h.Create(foreign)
			snap := h.Snapshot(foreign)
			before := egressInventory(h, ns)
			p := GoodEgressPolicy(ns, "bad", Istio)
			h.Create(p)
			want := "ServiceEntry " + ns + "/bad-api already exists and was not created by Meshplane; it is never taken over: delete or rename it, or rename this object (nothing was applied)"
			exactly(h, h.Stalled(p, meshv1alpha1.ConflictReason, want), want)
			sameEgress(h, ns, before)
			h.Unchanged(snap)
			h.Control("EgressPolicy", Istio)
		}})
	Register(Case{Category: "half-applied", Kind: "EgressPolicy", Mesh: Istio, Name: "refused update keeps the previous allow-list",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			p := GoodEgressPolicy(ns, "web", Istio)
			h.Create(p)
			h.Ready(p)
			before := egressInventory(h, ns)
			h.Must(h.Update(p, func() {
				p.Spec.Rules = append(p.Spec.Rules, meshv1alpha1.EgressRule{Name: "smtp", Hosts: []string{"smtp.example.com"},
					Ports: []meshv1alpha1.EgressPort{{Number: 25, Protocol: meshv1alpha1.EgressTCP}}})
			}))
			exactly(h, h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, istioTCPHostMsg), istioTCPHostMsg)
			sameEgress(h, ns, before)
			if len(p.Status.Inventory) != 2 {
				h.Fatalf("inventory after the refused update: %v", p.Status.Inventory)
			}
			h.Control("EgressPolicy", Istio)
		}})
}

// egressGatewayService is an egress gateway's Service named egress in ns
// (the pods are the user's; only the Service is checked).
func egressGatewayService(ns string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "egress", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "egress"}, Ports: []corev1.ServicePort{{Name: "tls", Port: 443}}}}
}
