package mesh

import (
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Proxy capabilities (ProxyPolicy).
const (
	// CapProxyResources sets the per-pod proxy's CPU and memory requests
	// and limits through pod-template annotations.
	CapProxyResources Capability = "ProxyResources"
	// CapProxyEgressScope narrows the outbound configuration each proxy
	// receives to a list of hosts.
	CapProxyEgressScope Capability = "ProxyEgressScope"
)

// ProxyCapabilities are the proxy capabilities in documentation order;
// they follow the others in AllCapabilities.
var ProxyCapabilities = []Capability{CapProxyResources, CapProxyEgressScope}

func init() {
	// Kept beside the kind, as telemetry.go does.
	AllCapabilities = append(AllCapabilities, ProxyCapabilities...)
	capabilityDocs[CapProxyResources] = "ProxyPolicy resources (sidecar CPU/memory requests and limits as pod-template annotations)"
	capabilityDocs[CapProxyEgressScope] = "ProxyPolicy egressScope (the hosts each sidecar receives configuration for)"
}

// ProxyPolicyRequirements returns the capabilities a ProxyPolicy spec
// uses.
func ProxyPolicyRequirements(spec *meshv1alpha1.ProxyPolicySpec) []Capability {
	var req []Capability
	if spec.Resources != nil {
		req = append(req, CapProxyResources)
	}
	if spec.EgressScope != nil {
		req = append(req, CapProxyEgressScope)
	}
	return req
}

// ProxyConfig is a ProxyPolicy's translation: the outputs the policy owns
// and the annotations every selected workload's pod template gets.
type ProxyConfig struct {
	// Objects are owned outputs (Istio's Sidecar).
	Objects []client.Object
	// Annotations are set on the pod template of every selected workload
	// (a shared field: the workload is not Meshplane's).
	Annotations map[string]string
}

// ProxyTranslator turns a ProxyPolicy into the mesh's proxy settings. It
// is pure: no I/O.
type ProxyTranslator interface {
	Provider
	// TranslateProxyPolicy returns the configuration for p in a namespace
	// with facts f, or an *UnsupportedFeatureError naming what the mesh
	// (or the namespace's data plane) cannot express and why.
	TranslateProxyPolicy(p *meshv1alpha1.ProxyPolicy, f NamespaceFacts) (ProxyConfig, error)
	// ProxyOutputKinds are the kinds of ProxyConfig.Objects, for the
	// controller's watches.
	ProxyOutputKinds() []client.Object
}

// ProxyTranslator returns the named provider's ProxyTranslator.
func (r *Registry) ProxyTranslator(name meshv1alpha1.Provider) (ProxyTranslator, error) {
	return lookup[ProxyTranslator](r, name, "proxy settings (ProxyPolicy)")
}

// ProxyOutputKinds returns the proxy output kinds of every registered
// provider, without duplicates.
func (r *Registry) ProxyOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(ProxyTranslator); ok {
			out = appendKinds(out, t.ProxyOutputKinds())
		}
	}
	return out
}

// ProxyQuantities are a ProxyPolicy's resources, parsed.
type ProxyQuantities struct {
	CPURequest, CPULimit, MemoryRequest, MemoryLimit *resource.Quantity
}

// ParseProxyResources parses and checks spec.resources: every value a
// positive Kubernetes quantity, no request above its limit. The API
// server's CEL rules say the same; this check also covers objects stored
// before a rule existed and offline rendering. The error (InvalidSpec,
// terminal) names the field, the value and the fix.
func ParseProxyResources(r *meshv1alpha1.ProxyResources) (ProxyQuantities, error) {
	var q ProxyQuantities
	if r == nil {
		return q, nil
	}
	for _, f := range []struct {
		name, value, example string
		into                 **resource.Quantity
	}{
		{"cpuRequest", r.CPURequest, "100m", &q.CPURequest},
		{"cpuLimit", r.CPULimit, "1", &q.CPULimit},
		{"memoryRequest", r.MemoryRequest, "64Mi", &q.MemoryRequest},
		{"memoryLimit", r.MemoryLimit, "256Mi", &q.MemoryLimit},
	} {
		if f.value == "" {
			continue
		}
		v, err := resource.ParseQuantity(f.value)
		if err != nil || v.Sign() <= 0 {
			return q, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
				"spec.resources.%s %q is not a positive Kubernetes quantity: write it like %q", f.name, f.value, f.example)
		}
		*f.into = &v
	}
	if q.CPURequest != nil && q.CPULimit != nil && q.CPURequest.Cmp(*q.CPULimit) > 0 {
		return q, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.resources.cpuRequest %q exceeds spec.resources.cpuLimit %q: lower the request or raise the limit", r.CPURequest, r.CPULimit)
	}
	if q.MemoryRequest != nil && q.MemoryLimit != nil && q.MemoryRequest.Cmp(*q.MemoryLimit) > 0 {
		return q, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.resources.memoryRequest %q exceeds spec.resources.memoryLimit %q: lower the request or raise the limit", r.MemoryRequest, r.MemoryLimit)
	}
	return q, nil
}
