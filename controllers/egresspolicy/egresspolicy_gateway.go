package egresspolicy

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// checkGatewayService refuses a policy routed through an egress gateway
// whose Service does not exist (the mesh would route the allowed hosts to
// nothing). The Service's creation re-checks it (policiesForService).
func (r *Reconciler) checkGatewayService(ctx context.Context, tr mesh.EgressTranslator, p *meshv1alpha1.EgressPolicy, f mesh.NamespaceFacts) error {
	namer, ok := tr.(mesh.EgressGatewayServiceNamer)
	if !ok {
		return nil
	}
	key, ok := namer.EgressGatewayService(p, f)
	if !ok {
		return nil
	}
	err := r.Client.Get(ctx, key, &corev1.Service{})
	if apierrors.IsNotFound(err) {
		return outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
			"spec.gateway.name: egress gateway Service %s/%s does not exist; deploy the egress gateway (e.g. Istio's gateway chart) "+
				"or fix spec.gateway.name/namespace (nothing was applied; re-checked when it appears)", key.Namespace, key.Name)
	}
	return err
}

// policiesForService are the policies whose spec.gateway names svc.
func (r *Reconciler) policiesForService(ctx context.Context, svc client.Object) []reconcile.Request {
	list := &meshv1alpha1.EgressPolicyList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, p := range list.Items {
		g := p.Spec.Gateway
		if g == nil || g.Name != svc.GetName() {
			continue
		}
		if ns := g.Namespace; ns == svc.GetNamespace() || (ns == "" && p.Namespace == svc.GetNamespace()) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
		}
	}
	return out
}
