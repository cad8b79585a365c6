package outputs

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/mesh"
)

// httpRoute is Gateway API's HTTPRoute, whose being served is an install
// fact (GAMMA routing needs it).
var httpRoute = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}

// Scope reads what decides the capabilities of the mesh found for
// namespace ns: its MeshInstall (none when the mesh was installed outside
// Meshplane or the MeshInstall is gone), whether the Gateway API is served,
// and the namespace's data plane. Reads go through the cache.
func (d *Deps) Scope(ctx context.Context, ns string, found discovery.Result) (mesh.Scope, error) {
	var mi *meshv1alpha1.MeshInstall
	if found.MeshInstall != "" {
		mi = &meshv1alpha1.MeshInstall{}
		if err := d.Client.Get(ctx, client.ObjectKey{Name: found.MeshInstall}, mi); err != nil {
			if !apierrors.IsNotFound(err) {
				return mesh.Scope{}, fmt.Errorf("reading MeshInstall %s: %w", found.MeshInstall, err)
			}
			mi = nil
		}
	}
	var namespace corev1.Namespace
	if err := d.Client.Get(ctx, client.ObjectKey{Name: ns}, &namespace); err != nil {
		return mesh.Scope{}, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	_, mapErr := d.Client.RESTMapper().RESTMapping(httpRoute, "v1")
	return mesh.Scope{
		Install:   mesh.InstallFactsOf(found.Provider, mi, mapErr == nil),
		Namespace: d.Registry.DataPlane(found.Provider, &namespace),
	}, nil
}

// Decide reads the scope of the mesh found for namespace ns and asks the
// registry whether it can enforce every capability of required: the scope,
// and nil or the terminal *mesh.UnsupportedFeatureError naming what to
// change.
func (d *Deps) Decide(ctx context.Context, ns string, found discovery.Result, required ...mesh.Capability) (mesh.Scope, error) {
	s, err := d.Scope(ctx, ns, found)
	if err != nil {
		return s, err
	}
	return s, d.Registry.Decide(s, required...)
}
