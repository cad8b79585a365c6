package zerotrustpolicy

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/mesh"
)

// heldIn resolves a policy that names no provider in a namespace no mesh
// selects yet, which a MeshAdoption holds in Audit before labelling it:
// to the adoption's mesh (mesh.HeldProvider), so the policy runs in Audit
// before the first pod joins. Otherwise it returns resolveErr.
func (r *Reconciler) heldIn(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy, ns *corev1.Namespace, resolveErr error) (discovery.Result, error) {
	var none *discovery.NoMeshError
	held, ok := mesh.HeldProvider(ns.Annotations)
	if p.Spec.Provider != "" || !ok || !errors.As(resolveErr, &none) {
		return discovery.Result{}, resolveErr
	}
	var installs meshv1alpha1.MeshInstallList
	if err := r.Client.List(ctx, &installs); err != nil {
		return discovery.Result{}, fmt.Errorf("listing MeshInstalls: %w", err)
	}
	return discovery.ForProvider(r.Registry, held, ns, installs.Items)
}
