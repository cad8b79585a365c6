package hostile

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// IngressGateway cases: what the schema refuses (each CEL rule, bounds,
// enums, reserved keys), what a mesh refuses (the exact message, no
// Gateway written, another IngressGateway still Ready), a GatewayClass
// that is missing or not accepted, a foreign Gateway of the same name, a
// refused update of a Ready gateway (its Gateway kept as it was), and a
// BreakGlass over the namespace (nothing relaxed: the gateway keeps
// serving).

// ingressClassLinkerd is the class of the Gateway API implementation the
// Linkerd cases "installed".
const ingressClassLinkerd = "hostile-ingress"

// GoodIngressGateway is a gateway with one HTTP listener; on Linkerd it
// names ingressClassLinkerd.
func GoodIngressGateway(ns, name string, m Mesh) *meshv1alpha1.IngressGateway {
	g := &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.IngressGatewaySpec{Listeners: []meshv1alpha1.IngressListener{{Name: "http", Port: 80, Protocol: meshv1alpha1.IngressHTTP}}}}
	g.Spec.Provider = Provider(m)
	if m == Linkerd {
		g.Spec.GatewayClassName = ingressClassLinkerd
	}
	return g
}

// ingressClasses makes sure the classes of the three meshes exist and are
// accepted (shared, idempotent).
func ingressClasses(h *H) {
	h.Helper()
	for _, c := range []string{"istio", "cilium", ingressClassLinkerd} {
		testenv.GatewayClass(h.T, h.C, c, true)
	}
}

// readyIngress creates g, programs its Gateway as the class's controller
// would, and waits until g is Ready.
func readyIngress(h *H, g *meshv1alpha1.IngressGateway) {
	h.Helper()
	ingressClasses(h)
	h.Create(g)
	h.Condition(g, meshv1alpha1.ReadyCondition, metav1.ConditionFalse, meshv1alpha1.GatewayNotProgrammedReason)
	testenv.ProgramGateway(h.T, h.C, g.Namespace, g.Name, true, true, "127.96.20.1")
	h.Ready(g)
}

// ingressInventory is h.Inventory plus the namespace's Gateways.
func ingressInventory(h *H, ns string) Inventory {
	h.Helper()
	inv := h.Inventory(ns)
	l := &gatewayv1.GatewayList{}
	h.Must(h.C.List(h.Ctx, l, client.InNamespace(ns)))
	for _, g := range l.Items {
		inv["Gateway/"+g.Name] = g.ResourceVersion
	}
	return inv
}

func sameIngress(h *H, ns string, before Inventory) {
	h.Helper()
	if after := ingressInventory(h, ns); fmt.Sprint(after) != fmt.Sprint(before) {
		h.Fatalf("namespace %s changed:\nbefore %v\nafter  %v", ns, before, after)
	}
}

// refusedIngress creates an IngressGateway broken by edit beside a Ready
// one and asserts the refusal: reason and exact message, no Gateway
// written, the Ready gateway's untouched, another gateway still Ready.
func refusedIngress(h *H, m Mesh, edit func(g *meshv1alpha1.IngressGateway), reason, want string) {
	h.Helper()
	ns := h.Namespace(m)
	readyIngress(h, GoodIngressGateway(ns, "first", m))
	before := ingressInventory(h, ns)
	g := GoodIngressGateway(ns, "bad", m)
	edit(g)
	h.Create(g)
	exactly(h, h.Stalled(g, reason, want), want)
	sameIngress(h, ns, before)
	h.Control("IngressGateway", m)
}

// rejectedIngress asserts the API server refuses an IngressGateway broken
// by edit, naming every want, and that nothing was created.
func rejectedIngress(h *H, edit func(g *meshv1alpha1.IngressGateway), want ...string) {
	h.Helper()
	ns := h.Namespace(Istio)
	before := ingressInventory(h, ns)
	g := GoodIngressGateway(ns, "bad", Istio)
	edit(g)
	h.Refused(g, want...)
	sameIngress(h, ns, before)
}

func init() {
	RegisterControl("IngressGateway", func(h *H, m Mesh) {
		readyIngress(h, GoodIngressGateway(h.Namespace(m), "control", m))
	})
	registerIngressSpecCases()
	registerIngressMeshCases()
	registerIngressLifeCases()
}

func https(g *meshv1alpha1.IngressGateway) *meshv1alpha1.IngressListener {
	g.Spec.Listeners = append(g.Spec.Listeners, meshv1alpha1.IngressListener{Name: "https", Port: 443, Protocol: meshv1alpha1.IngressHTTPS,
		CertificateRefs: []meshv1alpha1.LocalObjectReference{{Name: "tls"}}})
	return &g.Spec.Listeners[len(g.Spec.Listeners)-1]
}

func registerIngressSpecCases() {
	spec := func(name string, edit func(g *meshv1alpha1.IngressGateway), want ...string) {
		Register(Case{Category: "spec", Kind: "IngressGateway", Mesh: AnyMesh, Name: name,
			Run: func(h *H) { rejectedIngress(h, edit, want...) }})
	}
	const certs = "an HTTPS listener needs certificateRefs (Secrets of type kubernetes.io/tls in the gateway's namespace); an HTTP listener takes none"
	spec("HTTPS without certificateRefs", func(g *meshv1alpha1.IngressGateway) { https(g).CertificateRefs = nil }, certs)
	spec("HTTP with certificateRefs", func(g *meshv1alpha1.IngressGateway) {
		g.Spec.Listeners[0].CertificateRefs = []meshv1alpha1.LocalObjectReference{{Name: "tls"}}
	}, certs)
	spec("certificateRef in another namespace", func(g *meshv1alpha1.IngressGateway) {
		https(g).CertificateRefs[0].Name = "istio-system/tls"
	}, `name "istio-system/tls" is not a valid object name`, "give the name alone, without a namespace/ prefix")
	spec("one listener name twice", func(g *meshv1alpha1.IngressGateway) {
		https(g).Name = "http"
	}, "listener names must be unique")
	spec("two listeners on one port and hostname", func(g *meshv1alpha1.IngressGateway) {
		g.Spec.Listeners = append(g.Spec.Listeners, meshv1alpha1.IngressListener{Name: "again", Port: 80, Protocol: meshv1alpha1.IngressHTTP})
	}, "two listeners may not share a port and hostname")
	spec("HTTP and HTTPS on one port", func(g *meshv1alpha1.IngressGateway) {
		l := https(g)
		l.Port, l.Hostname = 80, "shop.example.com"
	}, "listeners on one port must share its protocol")
	spec("name longer than 50", func(g *meshv1alpha1.IngressGateway) { g.Name = strings.Repeat("a", 51) },
		"an IngressGateway's name may have at most 50 characters")
	spec("hostname with a scheme", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners[0].Hostname = "https://shop.example.com" },
		"spec.listeners[0].hostname")
	spec("bare wildcard hostname", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners[0].Hostname = "*" }, "spec.listeners[0].hostname")
	spec("hostname with an IP address port", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners[0].Hostname = "shop.example.com:8080" },
		"spec.listeners[0].hostname")
	spec("port 0", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners[0].Port = 0 }, "spec.listeners[0].port", "greater than or equal to 1")
	spec("port 70000", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners[0].Port = 70000 }, "spec.listeners[0].port", "less than or equal to 65535")
	spec("protocol TCP", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners[0].Protocol = "TCP" },
		"spec.listeners[0].protocol", `Unsupported value: "TCP"`)
	spec("no listeners", func(g *meshv1alpha1.IngressGateway) { g.Spec.Listeners = []meshv1alpha1.IngressListener{} }, "spec.listeners")
	spec("17 listeners", func(g *meshv1alpha1.IngressGateway) {
		for i := range 16 {
			g.Spec.Listeners = append(g.Spec.Listeners, meshv1alpha1.IngressListener{Name: fmt.Sprintf("l%d", i), Port: int32(8000 + i), Protocol: meshv1alpha1.IngressHTTP})
		}
	}, "spec.listeners", "must have at most 16 items")
	spec("meshInjection Maybe", func(g *meshv1alpha1.IngressGateway) { g.Spec.MeshInjection = "Maybe" },
		"spec.meshInjection", `Unsupported value: "Maybe"`)
	spec("routeNamespaces Selector", func(g *meshv1alpha1.IngressGateway) { g.Spec.RouteNamespaces = "Selector" },
		"spec.routeNamespaces", `Unsupported value: "Selector"`)
	spec("gatewayClassName in capitals", func(g *meshv1alpha1.IngressGateway) { g.Spec.GatewayClassName = "Istio" }, "spec.gatewayClassName")
	spec("a label under meshplane.io/", func(g *meshv1alpha1.IngressGateway) {
		g.Spec.Infrastructure = &meshv1alpha1.IngressInfrastructure{Labels: map[string]string{"meshplane.io/ingress-gateway": "other"}}
	}, "label keys under meshplane.io/ are reserved for Meshplane")
	spec("linkerd.io/inject as an annotation", func(g *meshv1alpha1.IngressGateway) {
		g.Spec.Infrastructure = &meshv1alpha1.IngressInfrastructure{Annotations: map[string]string{"linkerd.io/inject": "disabled"}}
	}, "set spec.meshInjection rather than the linkerd.io/inject annotation")
	spec("a label value of 64 characters", func(g *meshv1alpha1.IngressGateway) {
		g.Spec.Infrastructure = &meshv1alpha1.IngressInfrastructure{Labels: map[string]string{"team": strings.Repeat("x", 64)}}
	}, "label values may have at most 63 characters")
	spec("seven labels", func(g *meshv1alpha1.IngressGateway) {
		g.Spec.Infrastructure = &meshv1alpha1.IngressInfrastructure{Labels: map[string]string{}}
		for i := range 7 {
			g.Spec.Infrastructure.Labels[fmt.Sprintf("l%d", i)] = "x"
		}
	}, "spec.infrastructure.labels", "must have at most 6 items")
}

// Exact refusals of the meshes (internal/mesh/<mesh>/ingress.go,
// mesh.CheckGatewayClass).
const (
	istioOutsideMeshMsg  = "feature IngressOutsideMesh is not supported by Istio: spec.meshInjection Disabled: Istio's gateway is itself an Istio proxy (an Envoy configured by istiod) and cannot run outside the mesh; unset spec.meshInjection; remove the feature from the spec or choose another provider (nothing was applied)"
	ciliumOutsideMeshMsg = "feature IngressOutsideMesh is not supported by Cilium: spec.meshInjection Disabled: Cilium's gateway is its node Envoy, part of the datapath, with no pods of its own to leave out; unset spec.meshInjection; remove the feature from the spec or choose another provider (nothing was applied)"
	istioOtherClassMsg   = "spec.gatewayClassName envoy-gateway: on Istio the gateway is Istio's own, class istio (an Envoy configured by istiod, in the mesh); unset spec.gatewayClassName or set it to istio (nothing was applied)"
	ciliumOtherClassMsg  = "spec.gatewayClassName istio: on Cilium the gateway is Cilium's own, class cilium (its node Envoy); unset spec.gatewayClassName or set it to cilium (nothing was applied)"
	linkerdNoClassMsg    = "spec.gatewayClassName is required on Linkerd: Linkerd ships no ingress gateway; install a Gateway API implementation (e.g. Envoy Gateway) and set spec.gatewayClassName to its GatewayClass (nothing was applied)"
	linkerdHint          = "Linkerd ships no ingress: install the Gateway API implementation that serves this class (e.g. Envoy Gateway), or name the class of the one you run in spec.gatewayClassName"
)

func registerIngressMeshCases() {
	mesh := func(category string, m Mesh, name string, edit func(g *meshv1alpha1.IngressGateway), reason, want string) {
		Register(Case{Category: category, Kind: "IngressGateway", Mesh: m, Name: name,
			Run: func(h *H) { refusedIngress(h, m, edit, reason, want) }})
	}
	disabled := func(g *meshv1alpha1.IngressGateway) { g.Spec.MeshInjection = meshv1alpha1.MeshInjectionDisabled }
	mesh("unsupported", Istio, "meshInjection Disabled", disabled, meshv1alpha1.UnsupportedFeatureReason, istioOutsideMeshMsg)
	mesh("unsupported", Cilium, "meshInjection Disabled", disabled, meshv1alpha1.UnsupportedFeatureReason, ciliumOutsideMeshMsg)
	mesh("name-ref", Istio, "another implementation's class", func(g *meshv1alpha1.IngressGateway) { g.Spec.GatewayClassName = "envoy-gateway" },
		meshv1alpha1.InvalidSpecReason, istioOtherClassMsg)
	mesh("name-ref", Cilium, "Istio's class", func(g *meshv1alpha1.IngressGateway) { g.Spec.GatewayClassName = "istio" },
		meshv1alpha1.InvalidSpecReason, ciliumOtherClassMsg)
	mesh("missing-ref", Linkerd, "no gatewayClassName", func(g *meshv1alpha1.IngressGateway) { g.Spec.GatewayClassName = "" },
		meshv1alpha1.InvalidSpecReason, linkerdNoClassMsg)
	mesh("missing-ref", Linkerd, "a class that does not exist", func(g *meshv1alpha1.IngressGateway) { g.Spec.GatewayClassName = "not-installed" },
		meshv1alpha1.GatewayClassNotAcceptedReason,
		"GatewayClass not-installed does not exist: "+linkerdHint+" (nothing was applied; Meshplane retries when the class appears)")
	Register(Case{Category: "missing-ref", Kind: "IngressGateway", Mesh: Linkerd, Name: "a class its controller did not accept",
		Run: func(h *H) {
			testenv.GatewayClass(h.T, h.C, "hostile-refused", false)
			refusedIngress(h, Linkerd, func(g *meshv1alpha1.IngressGateway) { g.Spec.GatewayClassName = "hostile-refused" },
				meshv1alpha1.GatewayClassNotAcceptedReason,
				"GatewayClass hostile-refused (controller example.com/hostile-refused) is not accepted: its Accepted condition is not True "+
					"(InvalidParameters: set by the test); "+linkerdHint+" (nothing was applied; Meshplane retries when the class changes)")
		}})
}

func registerIngressLifeCases() {
	for _, m := range []Mesh{Istio, Linkerd, Cilium} {
		Register(Case{Category: "foreign", Kind: "IngressGateway", Mesh: m, Name: "a foreign Gateway of the same name",
			Run: func(h *H) {
				ingressClasses(h)
				ns := h.Namespace(m)
				foreign := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"team": "edge"}},
					Spec: gatewayv1.GatewaySpec{GatewayClassName: "istio",
						Listeners: []gatewayv1.Listener{{Name: "edge", Port: 8443, Protocol: gatewayv1.HTTPProtocolType}}}}
				h.Create(foreign)
				snap := h.Snapshot(foreign)
				before := ingressInventory(h, ns)
				g := GoodIngressGateway(ns, "web", m)
				h.Create(g)
				h.Stalled(g, meshv1alpha1.ConflictReason, "Gateway", "web")
				h.Unchanged(snap)
				sameIngress(h, ns, before)
				h.Control("IngressGateway", m)
			}})
	}
	Register(Case{Category: "refused-update", Kind: "IngressGateway", Mesh: Istio, Name: "Ready gateway updated to meshInjection Disabled",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			g := GoodIngressGateway(ns, "web", Istio)
			readyIngress(h, g)
			before := ingressInventory(h, ns)
			h.Must(h.Update(g, func() { g.Spec.MeshInjection = meshv1alpha1.MeshInjectionDisabled }))
			exactly(h, h.Stalled(g, meshv1alpha1.UnsupportedFeatureReason, istioOutsideMeshMsg), istioOutsideMeshMsg)
			// The Gateway of the previous generation stays in force.
			sameIngress(h, ns, before)
			if g.Status.BackendMTLS != meshv1alpha1.BackendMTLSYes || len(g.Status.Inventory) != 1 {
				h.Fatalf("status lost the gateway in force: %+v", g.Status)
			}
			h.Control("IngressGateway", Istio)
		}})
	Register(Case{Category: "breakglass", Kind: "IngressGateway", Mesh: Istio, Name: "a BreakGlass relaxes nothing of an ingress gateway",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			g := GoodIngressGateway(ns, "web", Istio)
			readyIngress(h, g)
			gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
			snap := h.Snapshot(gw)
			bg := GoodBreakGlass(Istio, ns)
			h.Create(bg)
			h.phase(bg, meshv1alpha1.BreakGlassEngaged)
			h.Unchanged(snap)
			h.Ready(g)
			h.Must(h.C.Delete(h.Ctx, bg))
		}})
}
