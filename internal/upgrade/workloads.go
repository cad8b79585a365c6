package upgrade

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Workloads lists the restartable workloads (Deployments, StatefulSets,
// DaemonSets) of namespace ns through c, with their DataPlaneAnnotation
// value and WorkloadReady verdict.
func Workloads(ctx context.Context, c client.Reader, ns string) ([]Workload, error) {
	var out []Workload
	add := func(kind string, o client.Object, tmpl *corev1.PodTemplateSpec) {
		ready, msg := WorkloadReady(o)
		out = append(out, Workload{Kind: kind, Name: o.GetName(), DataPlane: tmpl.Annotations[DataPlaneAnnotation], Ready: ready, Message: msg})
	}
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range deps.Items {
		add("Deployment", &deps.Items[i], &deps.Items[i].Spec.Template)
	}
	var sts appsv1.StatefulSetList
	if err := c.List(ctx, &sts, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range sts.Items {
		add("StatefulSet", &sts.Items[i], &sts.Items[i].Spec.Template)
	}
	var dss appsv1.DaemonSetList
	if err := c.List(ctx, &dss, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range dss.Items {
		add("DaemonSet", &dss.Items[i], &dss.Items[i].Spec.Template)
	}
	return out, nil
}
