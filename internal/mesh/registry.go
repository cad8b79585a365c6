package mesh

import (
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Registry resolves provider names to implementations. It is built
// explicitly from a list of providers and fails closed: every lookup of an
// unknown provider, or of an interface a provider does not implement,
// returns a terminal error.
type Registry struct {
	providers map[meshv1alpha1.Provider]Provider
}

// NewRegistry returns a registry of the given providers. Registering a
// provider twice, or one without a name, is an error.
func NewRegistry(providers ...Provider) (*Registry, error) {
	r := &Registry{providers: make(map[meshv1alpha1.Provider]Provider, len(providers))}
	for _, p := range providers {
		if p == nil || p.Name() == "" {
			return nil, fmt.Errorf("mesh registry: provider without a name")
		}
		if _, dup := r.providers[p.Name()]; dup {
			return nil, fmt.Errorf("mesh registry: provider %s registered twice", p.Name())
		}
		r.providers[p.Name()] = p
	}
	return r, nil
}

// Names returns the registered provider names, sorted.
func (r *Registry) Names() []meshv1alpha1.Provider {
	names := make([]meshv1alpha1.Provider, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Providers returns the registered providers, sorted by name.
func (r *Registry) Providers() []Provider {
	out := make([]Provider, 0, len(r.providers))
	for _, n := range r.Names() {
		out = append(out, r.providers[n])
	}
	return out
}

// Get returns the provider named name, or an *UnknownProviderError.
func (r *Registry) Get(name meshv1alpha1.Provider) (Provider, error) {
	p, ok := r.providers[name]
	if !ok {
		return nil, &UnknownProviderError{Name: name, Known: r.Names()}
	}
	return p, nil
}

// lookup returns the provider named name as a T, or a terminal error.
func lookup[T any](r *Registry, name meshv1alpha1.Provider, role string) (T, error) {
	var zero T
	p, err := r.Get(name)
	if err != nil {
		return zero, err
	}
	t, ok := p.(T)
	if !ok {
		return zero, &NotImplementedError{Provider: name, Role: role}
	}
	return t, nil
}

// Installer returns the named provider's Installer.
func (r *Registry) Installer(name meshv1alpha1.Provider) (Installer, error) {
	return lookup[Installer](r, name, "installation (MeshInstall)")
}

// TrafficTranslator returns the named provider's TrafficTranslator.
func (r *Registry) TrafficTranslator(name meshv1alpha1.Provider) (TrafficTranslator, error) {
	return lookup[TrafficTranslator](r, name, "traffic routing (TrafficSplit, Canary)")
}

// PolicyTranslator returns the named provider's PolicyTranslator.
func (r *Registry) PolicyTranslator(name meshv1alpha1.Provider) (PolicyTranslator, error) {
	return lookup[PolicyTranslator](r, name, "policy (ZeroTrustPolicy)")
}

// BreakGlassDriver returns the named provider's BreakGlassDriver.
func (r *Registry) BreakGlassDriver(name meshv1alpha1.Provider) (BreakGlassDriver, error) {
	return lookup[BreakGlassDriver](r, name, "break-glass (BreakGlass)")
}

// TrustWriter returns the named provider's TrustWriter.
func (r *Registry) TrustWriter(name meshv1alpha1.Provider) (TrustWriter, error) {
	return lookup[TrustWriter](r, name, "trust distribution (MeshFederation)")
}

// UnknownProviderError says a provider name is not registered.
type UnknownProviderError struct {
	// Name is the requested provider.
	Name meshv1alpha1.Provider
	// Known lists the registered providers.
	Known []meshv1alpha1.Provider
}

// Error names the provider and the registered ones.
func (e *UnknownProviderError) Error() string {
	known := make([]string, len(e.Known))
	for i, k := range e.Known {
		known[i] = string(k)
	}
	return fmt.Sprintf("provider %q is not registered in this Meshplane build (registered: %s); set provider to one of them",
		e.Name, strings.Join(known, ", "))
}

// StalledReason makes the error terminal with reason ProviderUnknown.
func (e *UnknownProviderError) StalledReason() string { return meshv1alpha1.ProviderUnknownReason }

// NotImplementedError says a registered provider does not support a kind.
type NotImplementedError struct {
	// Provider is the mesh.
	Provider meshv1alpha1.Provider
	// Role is what was asked of it.
	Role string
}

// Error names the provider and the role.
func (e *NotImplementedError) Error() string {
	return fmt.Sprintf("provider %s does not implement %s in this Meshplane build; choose another provider", e.Provider, e.Role)
}

// StalledReason makes the error terminal with reason UnsupportedFeature.
func (e *NotImplementedError) StalledReason() string { return meshv1alpha1.UnsupportedFeatureReason }
