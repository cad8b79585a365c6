package install

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// WorkloadReady says whether a Deployment, DaemonSet or StatefulSet has
// finished rolling out and is fully available, with the reason when not.
// It follows the rules of `kubectl rollout status` and kstatus: the
// controller observed the latest generation, every replica runs the
// current template, and every replica is available.
func WorkloadReady(obj any) (bool, string) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		want := int32(1)
		if w.Spec.Replicas != nil {
			want = *w.Spec.Replicas
		}
		switch {
		case w.Status.ObservedGeneration < w.Generation:
			return false, "rollout not yet observed by the deployment controller"
		case w.Status.UpdatedReplicas < want:
			return false, fmt.Sprintf("%d of %d replicas updated", w.Status.UpdatedReplicas, want)
		case w.Status.Replicas > w.Status.UpdatedReplicas:
			return false, fmt.Sprintf("%d old replicas pending termination", w.Status.Replicas-w.Status.UpdatedReplicas)
		case w.Status.AvailableReplicas < want:
			return false, fmt.Sprintf("%d of %d replicas available", w.Status.AvailableReplicas, want)
		}
		for _, c := range w.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse {
				return false, "progress deadline exceeded: " + c.Message
			}
		}
		return true, ""
	case *appsv1.DaemonSet:
		switch {
		case w.Status.ObservedGeneration < w.Generation:
			return false, "rollout not yet observed by the daemonset controller"
		case w.Status.UpdatedNumberScheduled < w.Status.DesiredNumberScheduled:
			return false, fmt.Sprintf("%d of %d pods updated", w.Status.UpdatedNumberScheduled, w.Status.DesiredNumberScheduled)
		case w.Status.NumberAvailable < w.Status.DesiredNumberScheduled:
			return false, fmt.Sprintf("%d of %d pods available", w.Status.NumberAvailable, w.Status.DesiredNumberScheduled)
		}
		return true, ""
	case *appsv1.StatefulSet:
		want := int32(1)
		if w.Spec.Replicas != nil {
			want = *w.Spec.Replicas
		}
		switch {
		case w.Status.ObservedGeneration < w.Generation:
			return false, "rollout not yet observed by the statefulset controller"
		case w.Status.UpdatedReplicas < want:
			return false, fmt.Sprintf("%d of %d replicas updated", w.Status.UpdatedReplicas, want)
		case w.Status.AvailableReplicas < want:
			return false, fmt.Sprintf("%d of %d replicas available", w.Status.AvailableReplicas, want)
		}
		return true, ""
	}
	return false, fmt.Sprintf("unsupported workload %T", obj)
}
