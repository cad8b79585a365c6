package main

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// translateResilience translates a ResiliencePolicy offline as its
// controller does, for a default install of mesh p in a namespace of the
// mesh's usual data plane, with no TrafficSplit routing the target (the
// policy writes its own route). The target Service is not read: its pods'
// selector is unknown, so a rate limit is refused offline.
func translateResilience(reg *mesh.Registry, rp *meshv1alpha1.ResiliencePolicy, p meshv1alpha1.Provider) ([]client.Object, error) {
	scope := mesh.DefaultScope(p)
	scope.Namespace.Name = rp.Namespace
	t, err := reg.ResilienceTranslator(p)
	if err != nil {
		if prov, gerr := reg.Get(p); gerr == nil {
			if s, ok := prov.(mesh.ResilienceSupporter); ok {
				if derr := mesh.DecideResilience(s, scope, &rp.Spec); derr != nil {
					return nil, derr
				}
			}
		}
		return nil, err
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: rp.Spec.TargetRef.Name, Namespace: rp.Namespace}}
	if rp.Spec.TargetRef.Port != nil {
		svc.Spec.Ports = []corev1.ServicePort{{Port: *rp.Spec.TargetRef.Port}}
	}
	return t.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: rp, Service: svc, Scope: scope})
}
