package mesh

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// This file is the contract of IngressGateway with the providers: the
// capabilities, the translator interface, what the controller observes
// for it, and the checks every provider shares.

// Ingress capabilities (IngressGateway).
const (
	// CapIngressGateway serves a meshed ingress through a Gateway API
	// Gateway.
	CapIngressGateway Capability = "IngressGateway"
	// CapIngressOutsideMesh runs the gateway's pods without the mesh's
	// proxy (spec.meshInjection Disabled).
	CapIngressOutsideMesh Capability = "IngressOutsideMesh"
)

// IngressCapabilities are the capabilities of IngressGateway in
// documentation order; they follow the others in AllCapabilities.
var IngressCapabilities = []Capability{CapIngressGateway, CapIngressOutsideMesh}

func init() {
	// Kept beside the kind, like TelemetryCapabilities.
	AllCapabilities = append(AllCapabilities, IngressCapabilities...)
	capabilityDocs[CapIngressGateway] = "IngressGateway (a Gateway API Gateway served by the mesh's gateway, or on Linkerd by a class of your choice)"
	capabilityDocs[CapIngressOutsideMesh] = "IngressGateway meshInjection Disabled (gateway pods without the mesh's proxy)"
}

// Labels Meshplane sets in a Gateway's spec.infrastructure.labels, which
// the implementation copies to what it creates: the controller finds the
// gateway's pods by them, in any namespace.
const (
	// IngressGatewayLabel carries the IngressGateway's name.
	IngressGatewayLabel = "meshplane.io/ingress-gateway"
	// IngressGatewayNamespaceLabel carries its namespace.
	IngressGatewayNamespaceLabel = "meshplane.io/ingress-gateway-namespace"
)

// IngressRequirements returns the capabilities an IngressGateway spec
// uses.
func IngressRequirements(spec *meshv1alpha1.IngressGatewaySpec) []Capability {
	req := []Capability{CapIngressGateway}
	if spec.MeshInjection == meshv1alpha1.MeshInjectionDisabled {
		req = append(req, CapIngressOutsideMesh)
	}
	return req
}

// GatewayClassFacts is what the API server says about a GatewayClass.
type GatewayClassFacts struct {
	// Name of the class.
	Name string
	// Exists reports whether the class exists.
	Exists bool
	// Controller is its spec.controllerName.
	Controller string
	// Accepted reports its Accepted condition is True; Reason and Message
	// are the condition's (empty when it has none).
	Accepted        bool
	Reason, Message string
}

// IngressClass is the GatewayClass that serves an IngressGateway on a
// mesh.
type IngressClass struct {
	// Name of the class.
	Name string
	// Hint says where the class comes from on the mesh: what to install or
	// enable when it is missing or not accepted.
	Hint string
}

// GatewayObservation is what the controller saw of the Gateway it wrote
// and, for providers that ask (IngressReadsPods), of the gateway's pods.
type GatewayObservation struct {
	// Programmed reports the Gateway's Programmed condition is True.
	Programmed bool
	// Pods are the gateway's pods (labelled IngressGatewayLabel and
	// IngressGatewayNamespaceLabel), any namespace; nil unless read.
	Pods []corev1.Pod
}

// MTLSReport answers whether the gateway reaches its backends over mutual
// TLS, and why.
type MTLSReport struct {
	Answer meshv1alpha1.BackendMTLS
	// Reason is a CamelCase reason for the BackendMTLS condition.
	Reason string
	// Message explains the answer.
	Message string
}

// IngressTranslator turns an IngressGateway into a Gateway API Gateway for
// the mesh, and reports whether the gateway reaches backends over mTLS.
// It is pure: no I/O.
type IngressTranslator interface {
	Provider
	// IngressClass returns the GatewayClass that serves g on this mesh, or
	// a terminal error when the spec names none the mesh can serve it
	// with. The controller checks the class exists and is accepted
	// (CheckGatewayClass) after the translation and the install-aware
	// decision, so their refusals, which name a field, come first.
	IngressClass(g *meshv1alpha1.IngressGateway) (IngressClass, error)
	// TranslateIngressGateway returns the desired objects for g in s, or an
	// *UnsupportedFeatureError (or another terminal error) naming the
	// field the mesh cannot serve.
	TranslateIngressGateway(g *meshv1alpha1.IngressGateway, s Scope) ([]client.Object, error)
	// IngressOutputKinds returns one empty object, with TypeMeta set, per
	// kind TranslateIngressGateway may return.
	IngressOutputKinds() []client.Object
	// IngressReadsPods reports whether BackendMTLS looks at the gateway's
	// pods (the controller lists them only then).
	IngressReadsPods() bool
	// BackendMTLS answers whether the gateway g, served as observed,
	// reaches its backends over mTLS.
	BackendMTLS(g *meshv1alpha1.IngressGateway, s Scope, obs GatewayObservation) MTLSReport
}

// IngressTranslator returns the named provider's IngressTranslator.
func (r *Registry) IngressTranslator(name meshv1alpha1.Provider) (IngressTranslator, error) {
	return lookup[IngressTranslator](r, name, "ingress gateways (IngressGateway)")
}

// IngressOutputKinds returns the kinds every registered ingress translator
// may write, each once, in provider order.
func (r *Registry) IngressOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(IngressTranslator); ok {
			out = appendKinds(out, t.IngressOutputKinds())
		}
	}
	return out
}

// CheckGatewayClass refuses a class that does not exist or that its
// controller has not accepted; hint says where the class comes from on
// the mesh (IngressClass.Hint).
func CheckGatewayClass(c GatewayClassFacts, hint string) error {
	if !c.Exists {
		return outcome.Stalled(meshv1alpha1.GatewayClassNotAcceptedReason,
			"GatewayClass %s does not exist: %s (nothing was applied; Meshplane retries when the class appears)", c.Name, hint)
	}
	if !c.Accepted {
		why := "its controller has not accepted it yet"
		if c.Reason != "" {
			why = fmt.Sprintf("its Accepted condition is not True (%s: %s)", c.Reason, c.Message)
		}
		return outcome.Stalled(meshv1alpha1.GatewayClassNotAcceptedReason,
			"GatewayClass %s (controller %s) is not accepted: %s; %s (nothing was applied; Meshplane retries when the class changes)",
			c.Name, c.Controller, why, hint)
	}
	return nil
}

// CheckIngressOutputs validates the outputs of an IngressGateway
// translation like those of the other kinds (CheckOutputs).
func CheckIngressOutputs(g *meshv1alpha1.IngressGateway, objs []client.Object) error {
	return CheckOutputs("IngressGateway "+g.Name, objs)
}

// TranslateIngress decides an IngressGateway for the mesh of s, in the
// order the refusals are reported: the translation (which names the spec
// field), the install-aware decision (which names the MeshInstall setting),
// then the GatewayClass, read by readClass (which says what to install).
// It returns the objects to apply and the class that serves them.
func (r *Registry) TranslateIngress(g *meshv1alpha1.IngressGateway, s Scope,
	readClass func(name string) (GatewayClassFacts, error),
) ([]client.Object, string, error) {
	tr, err := r.IngressTranslator(s.Install.Provider)
	if err != nil {
		return nil, "", err
	}
	objs, err := tr.TranslateIngressGateway(g, s)
	if err != nil {
		return nil, "", err
	}
	if err := r.Decide(s, IngressRequirements(&g.Spec)...); err != nil {
		return nil, "", err
	}
	class, err := tr.IngressClass(g)
	if err != nil {
		return nil, "", err
	}
	facts, err := readClass(class.Name)
	if err != nil {
		return nil, "", err
	}
	if err := CheckGatewayClass(facts, class.Hint); err != nil {
		return nil, "", err
	}
	return objs, class.Name, nil
}
