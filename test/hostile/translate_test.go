package hostile

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Translation cases: inputs the schema accepts and a mesh would drop or
// merge silently (header names differing in case, an invalid regular
// expression, control characters, paths proxies normalize, rule names
// that give two outputs one name, a UDP port), mesh limits the API allows
// beyond (Istio's 16 service accounts per source, names over 253
// characters, Cilium's 63-character label values), and overlaps (two
// routes for one Service, two policies with different mTLS modes on the
// same workloads). Each asserts the exact condition message, that nothing
// was written for the refused object, that the object already in the
// namespace kept its outputs, and that another object still reconciles.

// providerName is the provider as messages name it.
func providerName(m Mesh) meshv1alpha1.Provider {
	switch m {
	case Linkerd:
		return meshv1alpha1.ProviderLinkerd
	case Cilium:
		return meshv1alpha1.ProviderCilium
	}
	return meshv1alpha1.ProviderIstio
}

// exactly asserts a condition's message.
func exactly(h *H, c metav1.Condition, want string) {
	h.Helper()
	if c.Message != want {
		h.Fatalf("condition message\n got %s\nwant %s", c.Message, want)
	}
}

// withFirstSplit creates Services web, web-v1, web-v2, api and a Ready
// TrafficSplit "first" of Service api in a fresh namespace of m, and
// returns the namespace and its inventory once first is Ready.
func withFirstSplit(h *H, m Mesh) (string, Inventory) {
	h.Helper()
	ns := h.Namespace(m)
	for _, s := range []string{"web", "web-v1", "web-v2", "api"} {
		h.Service(ns, s)
	}
	first := GoodTrafficSplit(ns, "first", m)
	first.Spec.Service.Name = "api"
	h.Create(first)
	h.Ready(first)
	return ns, h.Inventory(ns)
}

// refusedSplit creates a TrafficSplit broken by edit beside a Ready one and
// asserts the refusal: reason and exact message, nothing written, the
// first split's outputs untouched, another split still reconciling.
func refusedSplit(h *H, m Mesh, edit func(ts *meshv1alpha1.TrafficSplit), reason, want string) {
	h.Helper()
	ns, before := withFirstSplit(h, m)
	ts := GoodTrafficSplit(ns, "bad", m)
	edit(ts)
	h.Create(ts)
	exactly(h, h.Stalled(ts, reason, want), want)
	h.Same(ns, before)
	h.Control("TrafficSplit", m)
}

func headerRule(headers ...meshv1alpha1.HTTPHeaderMatch) []meshv1alpha1.TrafficRule {
	return []meshv1alpha1.TrafficRule{{Name: "canary", Matches: []meshv1alpha1.HTTPMatch{{Headers: headers}},
		Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100}}}}
}

func pathRule(t meshv1alpha1.PathMatchType, v string) []meshv1alpha1.TrafficRule {
	return []meshv1alpha1.TrafficRule{{Name: "canary", Matches: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.HTTPPathMatch{Type: t, Value: v}}},
		Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100}}}}
}

const (
	headerCaseMsg = `spec.rules[0].matches[0].headers[1].name: "x-user" is the same header as spec.rules[0].matches[0].headers[0].name "X-User" (header names are case-insensitive, and a mesh keeps only one of them); put both conditions in one header match, or in two matches to OR them`
	regexMsg      = "spec.rules[0].matches[0].headers[0].value: \"(alice|bob\" is not an RE2 regular expression (error parsing regexp: missing closing ): `(alice|bob`); fix the expression"
	crlfMsg       = `spec.rules[0].matches[0].headers[0].value: "beta\r\nx-admin: true" contains the control character U+000D at byte 4; an HTTP header value cannot contain CR, LF or other control characters — remove it`
	dotdotMsg     = `spec.rules[0].matches[0].path.value: path "/api/../admin" must not contain //, /./, /../, %2f or # nor end with /. or /.. (proxies normalize such paths, so the match would not see them); use the normalized path`
)

func init() {
	for _, m := range Meshes {
		registerSplitTranslationCases(m)
		registerPolicyTranslationCases(m)
		registerOverlapCases(m)
	}
	// Istio's other output kind refuses the same input the same way.
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: Istio, Name: "header case with output GatewayAPI",
		Run: func(h *H) {
			refusedSplit(h, Istio, func(ts *meshv1alpha1.TrafficSplit) {
				ts.Spec.Output = meshv1alpha1.OutputGatewayAPI
				ts.Spec.Rules = headerRule(meshv1alpha1.HTTPHeaderMatch{Name: "X-User", Value: "a"}, meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Value: "b"})
			}, meshv1alpha1.InvalidSpecReason, headerCaseMsg)
		}})
	Register(Case{Category: "mesh-limit", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "16 paths x 9 methods over the route match limit",
		Run: func(h *H) {
			ns := h.Namespace(Linkerd)
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
			var paths []string
			for i := range 16 {
				paths = append(paths, fmt.Sprintf("/p%d", i))
			}
			p.Spec.Rules[0].To[0].Paths = paths
			p.Spec.Rules[0].To[0].Methods = []meshv1alpha1.HTTPMethod{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
			h.Create(p)
			want := "spec.rules[0].to[0]: 16 paths × 9 methods make 144 matches, and a Linkerd policy HTTPRoute holds at most 128 (16 rules of 8); split the destination into several with fewer paths or methods"
			exactly(h, h.Stalled(p, meshv1alpha1.InvalidSpecReason, want), want)
			h.Same(ns, before)
			h.Control("ZeroTrustPolicy", Linkerd)
		}})
	Register(Case{Category: "mesh-limit", Kind: "ZeroTrustPolicy", Mesh: Cilium, Name: "service account name over 63 characters",
		Run: func(h *H) {
			ns := h.Namespace(Cilium)
			before := h.Inventory(ns)
			long := strings.Repeat("s", 64)
			p := GoodZeroTrustPolicy(ns, "policy", Cilium)
			p.Spec.Rules[0].From[0].ServiceAccounts = []string{long}
			h.Create(p)
			want := fmt.Sprintf("spec.rules[0].from[0].serviceAccounts[0]: service account name %q is 64 characters; Cilium selects callers by the label k8s:io.cilium.k8s.policy.serviceaccount, whose values are at most 63 characters — use a shorter service account name", long)
			exactly(h, h.Stalled(p, meshv1alpha1.InvalidSpecReason, want), want)
			h.Same(ns, before)
			h.Control("ZeroTrustPolicy", Cilium)
		}})
}

func registerSplitTranslationCases(m Mesh) {
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: m, Name: "header names differing in case",
		Run: func(h *H) {
			refusedSplit(h, m, func(ts *meshv1alpha1.TrafficSplit) {
				ts.Spec.Rules = headerRule(meshv1alpha1.HTTPHeaderMatch{Name: "X-User", Value: "a"}, meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Value: "b"})
			}, meshv1alpha1.InvalidSpecReason, headerCaseMsg)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: m, Name: "invalid RE2 regex",
		Run: func(h *H) {
			refusedSplit(h, m, func(ts *meshv1alpha1.TrafficSplit) {
				ts.Spec.Rules = headerRule(meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Type: meshv1alpha1.HeaderMatchRegularExpression, Value: "(alice|bob"})
			}, meshv1alpha1.InvalidSpecReason, regexMsg)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: m, Name: "CR LF in a header value",
		Run: func(h *H) {
			refusedSplit(h, m, func(ts *meshv1alpha1.TrafficSplit) {
				ts.Spec.Rules = headerRule(meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Value: "beta\r\nx-admin: true"})
			}, meshv1alpha1.InvalidSpecReason, crlfMsg)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: m, Name: "dot-dot path",
		Run: func(h *H) {
			refusedSplit(h, m, func(ts *meshv1alpha1.TrafficSplit) {
				ts.Spec.Rules = pathRule(meshv1alpha1.PathMatchPathPrefix, "/api/../admin")
			}, meshv1alpha1.InvalidSpecReason, dotdotMsg)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: m, Name: "rule named default",
		Run: func(h *H) {
			refusedSplit(h, m, func(ts *meshv1alpha1.TrafficSplit) {
				ts.Spec.Rules = pathRule(meshv1alpha1.PathMatchExact, "/checkout")
				ts.Spec.Rules[0].Name = "default"
			}, meshv1alpha1.InvalidSpecReason, `spec.rules[0].name: "default" is reserved for the rule that carries spec.backends; rename the rule`)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: m, Name: "UDP-only port",
		Run: func(h *H) {
			ns, before := withFirstSplit(h, m)
			dns := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: ns},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "dns"}, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}}
			h.Create(dns)
			before["Service/dns"] = dns.ResourceVersion
			ts := GoodTrafficSplit(ns, "bad", m)
			ts.Spec.Service.Name = "dns"
			ts.Spec.Backends = []meshv1alpha1.WeightedBackend{{Name: "dns", Weight: 100}}
			h.Create(ts)
			want := fmt.Sprintf("feature UDPRouting is not supported by %s: spec.service.port: port 53 of Service dns is UDP only, and a TrafficSplit routes HTTP over TCP (no mesh splits UDP by weight); choose a TCP port; remove the feature from the spec or choose another provider (nothing was applied)", providerName(m))
			exactly(h, h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, want), want)
			h.Same(ns, before)
			h.Control("TrafficSplit", m)
		}})
	Register(Case{Category: "refused-update", Kind: "TrafficSplit", Mesh: m, Name: "update to an invalid regex keeps the previous outputs",
		Run: func(h *H) {
			ts, ns := readySplit(h, m)
			before := h.Inventory(ns)
			h.Must(h.Update(ts, func() {
				ts.Spec.Rules = headerRule(meshv1alpha1.HTTPHeaderMatch{Name: "x-user", Type: meshv1alpha1.HeaderMatchRegularExpression, Value: "(alice|bob"})
			}))
			exactly(h, h.Stalled(ts, meshv1alpha1.InvalidSpecReason, regexMsg), regexMsg)
			h.Same(ns, before)
			h.Control("TrafficSplit", m)
		}})
}

// refusedPolicy creates a ZeroTrustPolicy broken by edit in a namespace
// that already holds a Ready TrafficSplit and asserts the refusal.
func refusedPolicy(h *H, m Mesh, name string, edit func(p *meshv1alpha1.ZeroTrustPolicy), want string) {
	h.Helper()
	ns, before := withFirstSplit(h, m)
	p := GoodZeroTrustPolicy(ns, name, m)
	edit(p)
	h.Create(p)
	exactly(h, h.Stalled(p, meshv1alpha1.InvalidSpecReason, want), want)
	h.Same(ns, before)
	h.Control("ZeroTrustPolicy", m)
}

func registerPolicyTranslationCases(m Mesh) {
	Register(Case{Category: "silent-drop", Kind: "ZeroTrustPolicy", Mesh: m, Name: "unnamed rule and a rule named r0",
		Run: func(h *H) {
			refusedPolicy(h, m, "policy", func(p *meshv1alpha1.ZeroTrustPolicy) {
				second := *p.Spec.Rules[0].DeepCopy()
				second.Name = "r0"
				second.To = []meshv1alpha1.TrafficDestination{{Ports: []int32{9090}}}
				p.Spec.Rules = append(p.Spec.Rules, second)
			}, `spec.rules[1]: its name "r0" is also the name Meshplane gives the unnamed spec.rules[0], and the outputs of both would share names; give each rule a distinct name`)
		}})
	Register(Case{Category: "silent-drop", Kind: "ZeroTrustPolicy", Mesh: m, Name: "dot-dot path",
		Run: func(h *H) {
			refusedPolicy(h, m, "policy", func(p *meshv1alpha1.ZeroTrustPolicy) {
				p.Spec.Rules[0].To[0].Paths = []string{"/api/../admin"}
			}, `spec.rules[0].to[0].paths[0]: path "/api/../admin" must not contain //, /./, /../, %2f or # nor end with /. or /.. (proxies normalize such paths, so the match would not see them); use the normalized path`)
		}})
	Register(Case{Category: "mesh-limit", Kind: "ZeroTrustPolicy", Mesh: m, Name: "32 service accounts in one source",
		Run: func(h *H) {
			ns := h.Namespace(m)
			p := GoodZeroTrustPolicy(ns, "policy", m)
			var sas []string
			for i := range 32 {
				sas = append(sas, fmt.Sprintf("caller-%d", i))
			}
			p.Spec.Rules[0].From[0].ServiceAccounts = sas
			h.Create(p)
			h.Ready(p)
			// Every service account is in the output: none dropped.
			got := serviceAccountsOut(h, m, ns, p.Name)
			if len(got) != 32 {
				h.Fatalf("%d service accounts in the outputs, want 32: %v", len(got), got)
			}
			h.Control("ZeroTrustPolicy", m)
		}})
	Register(Case{Category: "mesh-limit", Kind: "ZeroTrustPolicy", Mesh: m, Name: "253-character name",
		Run: func(h *H) {
			ns := h.Namespace(m)
			before := h.Inventory(ns)
			name := strings.Repeat("p", 253)
			p := GoodZeroTrustPolicy(ns, name, m)
			h.Create(p)
			if m != Linkerd {
				// Istio and Cilium name their outputs after the policy.
				h.Ready(p)
				return
			}
			want := fmt.Sprintf("output Server %q would be 258 characters, over Kubernetes' limit of 253 for a name; shorten metadata.name of ZeroTrustPolicy %s (or its rule names) by at least 5 characters", name+"-8080", name)
			exactly(h, h.Stalled(p, meshv1alpha1.InvalidSpecReason, want), want)
			h.Same(ns, before)
			h.Control("ZeroTrustPolicy", m)
		}})
}

// serviceAccountsOut lists the callers' service accounts of the outputs of
// policy name: the AuthorizationPolicy's sources (Istio), the
// MeshTLSAuthentication's identityRefs (Linkerd), the
// CiliumNetworkPolicy's fromEndpoints (Cilium).
func serviceAccountsOut(h *H, m Mesh, ns, name string) []string {
	h.Helper()
	get := func(gvk schema.GroupVersionKind, n string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: n}, u))
		return u
	}
	var out []string
	switch m {
	case Istio:
		u := get(schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}, name)
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		from, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "from")
		for _, f := range from {
			sas, _, _ := unstructured.NestedStringSlice(f.(map[string]any), "source", "serviceAccounts")
			if len(sas) > 16 {
				h.Fatalf("a source lists %d service accounts; Istio accepts 16", len(sas))
			}
			out = append(out, sas...)
		}
	case Linkerd:
		u := get(schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "MeshTLSAuthentication"}, name+"-r0")
		refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "identityRefs")
		for _, r := range refs {
			out = append(out, r.(map[string]any)["name"].(string))
		}
	case Cilium:
		u := get(schema.GroupVersionKind{Group: "cilium.io", Version: "v2", Kind: "CiliumNetworkPolicy"}, name)
		ingress, _, _ := unstructured.NestedSlice(u.Object, "spec", "ingress")
		eps, _, _ := unstructured.NestedSlice(ingress[0].(map[string]any), "fromEndpoints")
		for _, e := range eps {
			sa, _, _ := unstructured.NestedString(e.(map[string]any), "matchLabels", "k8s:io.cilium.k8s.policy.serviceaccount")
			out = append(out, sa)
		}
	}
	return out
}

func registerOverlapCases(m Mesh) {
	Register(Case{Category: "overlap", Kind: "TrafficSplit", Mesh: m, Name: "two TrafficSplits on one Service",
		Run: func(h *H) {
			ns := h.Namespace(m)
			for _, s := range []string{"web", "web-v1", "web-v2"} {
				h.Service(ns, s)
			}
			first := GoodTrafficSplit(ns, "first", m)
			h.Create(first)
			h.Ready(first)
			before := h.Inventory(ns)
			second := GoodTrafficSplit(ns, "second", m)
			second.Spec.Backends = []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 50}, {Name: "web-v2", Weight: 50}}
			h.Create(second)
			want := "spec.service.name web: Service web is already routed by TrafficSplit first; two routes for one Service would both be applied and the mesh would follow only one of them — route another Service, merge the two into one, or delete TrafficSplit first (this TrafficSplit is re-checked when it changes or goes away)"
			exactly(h, h.Stalled(second, meshv1alpha1.ConflictReason, want), want)
			h.Same(ns, before)
			h.Control("TrafficSplit", m)
			// The first going away lets the second reconcile.
			h.Must(h.C.Delete(h.Ctx, first))
			h.Ready(second)
		}})
	Register(Case{Category: "overlap", Kind: "TrafficSplit", Mesh: m, Name: "moving a Ready TrafficSplit onto a routed Service",
		Run: func(h *H) {
			ns := h.Namespace(m)
			for _, s := range []string{"web", "web-v1", "web-v2", "api"} {
				h.Service(ns, s)
			}
			first := GoodTrafficSplit(ns, "a-first", m)
			first.Spec.Service.Name = "api"
			h.Create(first)
			h.Ready(first)
			second := GoodTrafficSplit(ns, "b-second", m)
			h.Create(second)
			h.Ready(second)
			before := h.Inventory(ns)
			// The older split edited onto the younger one's Service loses:
			// the younger is in force; the older keeps its last outputs.
			h.Must(h.Update(first, func() { first.Spec.Service.Name = "web" }))
			want := "spec.service.name web: Service web is already routed by TrafficSplit b-second; two routes for one Service would both be applied and the mesh would follow only one of them — route another Service, merge the two into one, or delete TrafficSplit b-second (this TrafficSplit is re-checked when it changes or goes away)"
			exactly(h, h.Stalled(first, meshv1alpha1.ConflictReason, want), want)
			h.Same(ns, before)
			h.Ready(second)
		}})
	Register(Case{Category: "overlap", Kind: "Canary", Mesh: m, Name: "Canary on a Service a TrafficSplit routes",
		Run: func(h *H) {
			ns := h.Namespace(m)
			for _, s := range []string{"web", "web-v1", "web-v2"} {
				h.Service(ns, s)
			}
			ts := GoodTrafficSplit(ns, "split", m)
			h.Create(ts)
			h.Ready(ts)
			before := h.Inventory(ns)
			cn := GoodCanary(ns, "web", m)
			h.Create(cn)
			want := "spec.targetRef.name web: Service web is already routed by TrafficSplit split; two routes for one Service would both be applied and the mesh would follow only one of them — route another Service, merge the two into one, or delete TrafficSplit split (this Canary is re-checked when it changes or goes away)"
			exactly(h, h.Stalled(cn, meshv1alpha1.ConflictReason, want), want)
			h.Same(ns, before)
			h.Control("TrafficSplit", m)
		}})
	Register(Case{Category: "overlap", Kind: "ZeroTrustPolicy", Mesh: m, Name: "Strict and Permissive on the same workloads",
		Run: func(h *H) {
			ns := h.Namespace(m)
			first := GoodZeroTrustPolicy(ns, "first", m)
			h.Create(first)
			h.Ready(first)
			before := h.Inventory(ns)
			nsObj := nsOf(h, ns)
			snap := h.Snapshot(nsObj)
			second, mine, theirs := otherPolicy(ns, "second", m)
			h.Create(second)
			want := "ZeroTrustPolicy first (" + theirs + ", the whole namespace) already covers workloads this policy selects (" + mine + ", the whole namespace); a workload has one mTLS mode and one default action, so the mesh would enforce only one of the two — give both the same spec.mtls.mode and spec.defaultAction, make spec.selector disjoint from first's, or delete one (this policy is re-checked when first changes or goes away)"
			exactly(h, h.Stalled(second, meshv1alpha1.ConflictReason, want), want)
			h.Same(ns, before)
			h.Unchanged(snap)
			h.Control("ZeroTrustPolicy", m)
			h.Must(h.C.Delete(h.Ctx, first))
			h.Ready(second)
		}})
	if m == Linkerd {
		return // Linkerd policies are namespace-wide: no selectors
	}
	Register(Case{Category: "overlap", Kind: "ZeroTrustPolicy", Mesh: m, Name: "Strict and Permissive on disjoint selectors",
		Run: func(h *H) {
			ns := h.Namespace(m)
			web := GoodZeroTrustPolicy(ns, "web", m)
			web.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			h.Create(web)
			db := GoodZeroTrustPolicy(ns, "db", m)
			db.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
			db.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
			h.Create(db)
			h.Ready(web)
			h.Ready(db)
		}})
	Register(Case{Category: "overlap", Kind: "ZeroTrustPolicy", Mesh: m, Name: "Permissive selector inside a Strict namespace-wide policy",
		Run: func(h *H) {
			ns := h.Namespace(m)
			first := GoodZeroTrustPolicy(ns, "first", m)
			h.Create(first)
			h.Ready(first)
			before := h.Inventory(ns)
			second, mine, theirs := otherPolicy(ns, "second", m)
			second.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "legacy"}}
			h.Create(second)
			want := "ZeroTrustPolicy first (" + theirs + ", the whole namespace) already covers workloads this policy selects (" + mine + ", selector app=legacy); a workload has one mTLS mode and one default action, so the mesh would enforce only one of the two — give both the same spec.mtls.mode and spec.defaultAction, make spec.selector disjoint from first's, or delete one (this policy is re-checked when first changes or goes away)"
			exactly(h, h.Stalled(second, meshv1alpha1.ConflictReason, want), want)
			h.Same(ns, before)
			// Giving the second the first's mode and action resolves the conflict.
			h.Must(h.Update(second, func() { second.Spec = GoodZeroTrustPolicy(ns, "second", m).Spec }))
			h.Ready(second)
			h.Ready(first)
		}})
}

// otherPolicy is a ZeroTrustPolicy that disagrees with GoodZeroTrustPolicy
// on the same workloads, with the descriptions of both as the conflict
// message gives them. Cilium's good policy is Permissive (Strict needs a
// MeshInstall with mutual auth and encryption, which the shared cluster
// has not), so there the two differ in default action instead of mode.
func otherPolicy(ns, name string, m Mesh) (p *meshv1alpha1.ZeroTrustPolicy, mine, theirs string) {
	p = GoodZeroTrustPolicy(ns, name, m)
	if m == Cilium {
		p.Spec.Rules, p.Spec.DefaultAction = nil, "Allow"
		return p, "mtls Permissive, defaultAction Allow", "mtls Permissive, defaultAction Deny"
	}
	p.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
	return p, "mtls Permissive, defaultAction Deny", "mtls Strict, defaultAction Deny"
}
