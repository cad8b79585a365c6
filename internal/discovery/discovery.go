// Package discovery answers "which mesh serves namespace X" from the
// namespace's labels and annotations (asked of every registered provider)
// and the MeshInstalls present.
//
// Rules, in order:
//  1. Providers that enrol the namespace explicitly (istio-injection,
//     istio.io/rev, istio.io/dataplane-mode, linkerd.io/inject) win. Two
//     different ones conflict.
//  2. Otherwise a provider that serves every namespace implicitly (Cilium,
//     as the CNI) is chosen if it is installed by a MeshInstall and has not
//     been opted out of.
//  3. Otherwise no mesh serves the namespace.
//
// When the provider has several MeshInstalls, an Istio revision label picks
// the one that runs that revision; if none can be picked the result is
// ambiguous. A namespace enrolled in a mesh with no MeshInstall still
// resolves (the mesh may be installed outside Meshplane), with an empty
// MeshInstall.
package discovery

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Result is the mesh serving a namespace.
type Result struct {
	// Provider is the mesh.
	Provider meshv1alpha1.Provider
	// MeshInstall names the MeshInstall of that mesh, empty when the mesh
	// is not installed by Meshplane.
	MeshInstall string
	// Revision is the Istio revision the namespace selects, if any.
	Revision string
	// Profile is the data-plane mode (Istio Ambient), if known.
	Profile meshv1alpha1.Profile
	// Source says what decided, e.g. "label istio-injection=enabled".
	Source string
}

// NoMeshError says no mesh serves a namespace. It is terminal with reason
// ProviderNotResolved.
type NoMeshError struct {
	// Namespace is the namespace asked about.
	Namespace string
	// OptedOut lists opt-out markers found, to explain the answer.
	OptedOut []string
}

// Error explains how to enrol the namespace or choose a provider.
func (e *NoMeshError) Error() string {
	msg := fmt.Sprintf("no mesh serves namespace %q", e.Namespace)
	if len(e.OptedOut) > 0 {
		msg += " (opted out by " + strings.Join(e.OptedOut, ", ") + ")"
	}
	return msg + ": label it istio-injection=enabled, istio.io/rev=<revision> or istio.io/dataplane-mode=ambient, " +
		"annotate it linkerd.io/inject=enabled, install Cilium with a MeshInstall, or set spec.provider"
}

// StalledReason makes the error terminal.
func (e *NoMeshError) StalledReason() string { return meshv1alpha1.ProviderNotResolvedReason }

// ConflictError says several meshes claim a namespace, or several
// MeshInstalls of one mesh could serve it.
type ConflictError struct {
	// Namespace is the namespace asked about.
	Namespace string
	// Candidates describe each claim.
	Candidates []string
}

// Error names the claims and how to choose.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("namespace %q is claimed by more than one mesh: %s; remove one of the labels/annotations or set spec.provider",
		e.Namespace, strings.Join(e.Candidates, "; "))
}

// StalledReason makes the error terminal.
func (e *ConflictError) StalledReason() string { return meshv1alpha1.ProviderNotResolvedReason }

// ForNamespace returns the mesh that serves ns, given the registered
// providers and the MeshInstalls present.
func ForNamespace(reg *mesh.Registry, ns *corev1.Namespace, installs []meshv1alpha1.MeshInstall) (Result, error) {
	var explicit, implicit []candidate
	var optedOut []string
	for _, p := range reg.Providers() {
		m := p.NamespaceMembership(ns)
		c := candidate{provider: p.Name(), m: m}
		switch m.Level {
		case mesh.ExplicitMember:
			explicit = append(explicit, c)
		case mesh.ImplicitMember:
			implicit = append(implicit, c)
		case mesh.OptedOut:
			optedOut = append(optedOut, m.Source)
		}
	}
	switch {
	case len(explicit) > 1:
		return Result{}, &ConflictError{Namespace: ns.Name, Candidates: describe(explicit)}
	case len(explicit) == 1:
		return resolveInstall(ns.Name, explicit[0], installs, false)
	}
	// Implicit members count only when installed by a MeshInstall.
	var installed []candidate
	for _, c := range implicit {
		if len(installsOf(c.provider, installs)) > 0 {
			installed = append(installed, c)
		}
	}
	switch {
	case len(installed) > 1:
		return Result{}, &ConflictError{Namespace: ns.Name, Candidates: describe(installed)}
	case len(installed) == 1:
		return resolveInstall(ns.Name, installed[0], installs, true)
	}
	return Result{}, &NoMeshError{Namespace: ns.Name, OptedOut: optedOut}
}

// ForProvider resolves the details (MeshInstall, revision, profile) of an
// explicitly chosen provider for ns, without the cross-mesh conflict check.
func ForProvider(reg *mesh.Registry, p meshv1alpha1.Provider, ns *corev1.Namespace, installs []meshv1alpha1.MeshInstall) (Result, error) {
	prov, err := reg.Get(p)
	if err != nil {
		return Result{}, err
	}
	m := prov.NamespaceMembership(ns)
	m.Source = "spec.provider"
	return resolveInstall(ns.Name, candidate{provider: p, m: m}, installs, false)
}

type candidate struct {
	provider meshv1alpha1.Provider
	m        mesh.Membership
}

func describe(cs []candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s (%s)", c.provider, c.m.Source)
	}
	return out
}

// installsOf returns the MeshInstalls of provider p that keep serving: a
// MeshInstall being deleted with deletionPolicy Orphan leaves its mesh
// running, so it still counts; one being uninstalled does not.
func installsOf(p meshv1alpha1.Provider, installs []meshv1alpha1.MeshInstall) []meshv1alpha1.MeshInstall {
	var out []meshv1alpha1.MeshInstall
	for _, mi := range installs {
		uninstalling := mi.DeletionTimestamp != nil && mi.Spec.DeletionPolicy == meshv1alpha1.DeletionUninstall
		if mi.Spec.Provider == p && !uninstalling {
			out = append(out, mi)
		}
	}
	slices.SortFunc(out, func(a, b meshv1alpha1.MeshInstall) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// resolveInstall picks the MeshInstall of the candidate's provider.
func resolveInstall(ns string, c candidate, installs []meshv1alpha1.MeshInstall, mustExist bool) (Result, error) {
	r := Result{Provider: c.provider, Revision: c.m.Revision, Profile: c.m.Profile, Source: c.m.Source}
	mine := installsOf(c.provider, installs)
	if len(mine) == 0 {
		if mustExist {
			return Result{}, &NoMeshError{Namespace: ns}
		}
		return r, nil
	}
	if len(mine) == 1 {
		r.MeshInstall = mine[0].Name
		return r, nil
	}
	// Several installs of the provider: the revision (or tag) the namespace
	// selects decides; no revision label means the default tag.
	rev := r.Revision
	if rev == "" {
		rev = DefaultTag
	}
	var match []string
	for _, mi := range mine {
		if servesRevision(&mi, rev) {
			match = append(match, mi.Name)
		}
	}
	if len(match) == 1 {
		r.MeshInstall = match[0]
		return r, nil
	}
	names := make([]string, len(mine))
	for i, mi := range mine {
		names[i] = "MeshInstall " + mi.Name
	}
	return Result{}, &ConflictError{Namespace: ns, Candidates: []string{
		fmt.Sprintf("%s (%s) is installed by %s", c.provider, c.m.Source, strings.Join(names, ", ")),
	}}
}

// DefaultTag is the Istio revision tag a namespace without istio.io/rev
// selects.
const DefaultTag = "default"

// servesRevision reports whether a MeshInstall runs or tags the revision.
func servesRevision(mi *meshv1alpha1.MeshInstall, rev string) bool {
	defaultTag := DefaultTag
	if mi.Spec.Istio != nil {
		if mi.Spec.Istio.DefaultTag != "" {
			defaultTag = mi.Spec.Istio.DefaultTag
		}
		if mi.Spec.Istio.Revision == rev {
			return true
		}
	}
	if rev == defaultTag || mi.Status.ActiveRevision == rev {
		return true
	}
	for _, r := range mi.Status.Revisions {
		if r.Name == rev || slices.Contains(r.Tags, rev) {
			return true
		}
	}
	return false
}
