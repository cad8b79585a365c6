package discovery

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Resolver resolves the provider of a namespaced Meshplane object from the
// API server (normally through the manager's cache).
type Resolver struct {
	// Reader reads Namespaces and MeshInstalls.
	Reader client.Reader
	// Registry holds the registered providers.
	Registry *mesh.Registry
}

// Resolve returns the mesh for an object in namespace ns. An explicit
// provider wins after it is checked against the registry (fail closed),
// and the namespace still tells its revision, profile and MeshInstall;
// otherwise the namespace decides.
func (r *Resolver) Resolve(ctx context.Context, ns string, explicit meshv1alpha1.Provider) (Result, error) {
	if explicit != "" {
		if _, err := r.Registry.Get(explicit); err != nil {
			return Result{}, err
		}
	}
	var namespace corev1.Namespace
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: ns}, &namespace); err != nil {
		return Result{}, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	var installs meshv1alpha1.MeshInstallList
	if err := r.Reader.List(ctx, &installs); err != nil {
		return Result{}, fmt.Errorf("listing MeshInstalls: %w", err)
	}
	if explicit != "" {
		return ForProvider(r.Registry, explicit, &namespace, installs.Items)
	}
	return ForNamespace(r.Registry, &namespace, installs.Items)
}
