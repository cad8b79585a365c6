package mesh

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// This file is the contract of the namespaced kinds' controllers
// (TrafficSplit, ZeroTrustPolicy, Canary) with the providers beyond
// translation: which kinds they write (so the controllers watch them), how
// a written route is read back (Canary), and a mesh's namespace-wide
// policy rule (ZeroTrustPolicy).

// TrafficOutputs is implemented by TrafficTranslators: the kinds of the
// owned objects TranslateTrafficSplit may return. TrafficSplit and Canary
// controllers watch (Owns) them, so drift is repaired.
type TrafficOutputs interface {
	// TrafficOutputKinds returns one empty object, with TypeMeta set, per
	// kind.
	TrafficOutputKinds() []client.Object
}

// PolicyOutputs is implemented by PolicyTranslators: the kinds of the
// owned objects TranslateZeroTrustPolicy may return. Fields of shared
// objects (a Namespace's annotation) are not owned and not listed; the
// controller watches those objects itself.
type PolicyOutputs interface {
	// PolicyOutputKinds returns one empty object, with TypeMeta set, per
	// kind.
	PolicyOutputKinds() []client.Object
}

// RouteReader reads back a routing object a TrafficTranslator wrote, as
// the API server returns it (unstructured, uncached). A Canary reads its
// route back before scaling the canary down.
type RouteReader interface {
	Provider
	// CanaryShare reports the highest weight any rule of route gives the
	// Service backend and whether any request is mirrored to it. A route
	// of a kind the mesh does not write is an error wrapping
	// ErrNotARoute.
	CanaryShare(route *unstructured.Unstructured, backend string) (weight int64, mirrored bool, err error)
}

// ErrNotARoute says an object is not a routing object of the mesh asked.
var ErrNotARoute = errors.New("not a routing object of this mesh")

// ExclusivePolicy is implemented by PolicyTranslators whose policy is
// namespace-wide (Linkerd's default inbound policy): at most one
// ZeroTrustPolicy of a namespace may use the mesh there.
type ExclusivePolicy interface {
	// CheckExclusive returns nil when p may use the mesh in its namespace,
	// given every ZeroTrustPolicy of the namespace (p included), or a
	// terminal Conflict error naming the policy that holds the namespace
	// and how to resolve the clash.
	CheckExclusive(p *meshv1alpha1.ZeroTrustPolicy, namespace []meshv1alpha1.ZeroTrustPolicy) error
}

// TrafficOutputKinds returns the kinds every registered traffic translator
// may write, each once, in provider order. TrafficSplit and Canary own
// these.
func (r *Registry) TrafficOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(TrafficOutputs); ok {
			out = appendKinds(out, t.TrafficOutputKinds())
		}
	}
	return out
}

// PolicyOutputKinds returns the kinds every registered policy translator
// may write, each once, in provider order. ZeroTrustPolicy owns these.
func (r *Registry) PolicyOutputKinds() []client.Object {
	var out []client.Object
	for _, p := range r.Providers() {
		if t, ok := p.(PolicyOutputs); ok {
			out = appendKinds(out, t.PolicyOutputKinds())
		}
	}
	return out
}

func appendKinds(out, objs []client.Object) []client.Object {
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		if !slices.ContainsFunc(out, func(x client.Object) bool { return x.GetObjectKind().GroupVersionKind() == gvk }) {
			out = append(out, o)
		}
	}
	return out
}

// RouteReader returns the named provider's RouteReader.
func (r *Registry) RouteReader(name meshv1alpha1.Provider) (RouteReader, error) {
	return lookup[RouteReader](r, name, "reading routes back (Canary)")
}

// CanaryShare reads route with the first registered RouteReader that
// knows its kind (see RouteReader.CanaryShare); for callers that do not
// know which mesh wrote it.
func (r *Registry) CanaryShare(route *unstructured.Unstructured, backend string) (weight int64, mirrored bool, err error) {
	for _, p := range r.Providers() {
		rr, ok := p.(RouteReader)
		if !ok {
			continue
		}
		weight, mirrored, err = rr.CanaryShare(route, backend)
		if !errors.Is(err, ErrNotARoute) {
			return weight, mirrored, err
		}
	}
	return 0, false, fmt.Errorf("no registered provider reads a %s: %w", route.GroupVersionKind(), ErrNotARoute)
}

// ExclusivePolicy returns the named provider's ExclusivePolicy, and false
// when its policies are not namespace-wide (or it is not registered).
func (r *Registry) ExclusivePolicy(name meshv1alpha1.Provider) (ExclusivePolicy, bool) {
	p, err := r.Get(name)
	if err != nil {
		return nil, false
	}
	e, ok := p.(ExclusivePolicy)
	return e, ok
}
