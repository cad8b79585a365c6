package upgrade

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestWorkloadReady(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "w", Namespace: "ns", Generation: 2}
	available := []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
	}
	dep := func(st appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}, Status: st}
	}
	for _, tc := range []struct {
		name    string
		obj     runtime.Object
		ready   bool
		message string
	}{
		{name: "deployment rolled out", ready: true, obj: dep(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, Conditions: available})},
		{name: "deployment not observed", obj: dep(appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, Conditions: available}), message: "generation"},
		{name: "deployment updating", obj: dep(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, Conditions: available}), message: "Updated: 1/2"},
		{name: "deployment old replicas terminating", obj: dep(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 3, Conditions: available}), message: "Pending termination"},
		{name: "deployment unavailable", obj: dep(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, Conditions: available}), message: "Available: 1/2"},
		{name: "deployment past its progress deadline", obj: dep(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}}), message: "deadline"},
		{name: "daemonset rolled out", ready: true, obj: &appsv1.DaemonSet{ObjectMeta: meta, Status: appsv1.DaemonSetStatus{ObservedGeneration: 2,
			DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3, NumberReady: 3}}},
		{name: "daemonset updating", obj: &appsv1.DaemonSet{ObjectMeta: meta, Status: appsv1.DaemonSetStatus{ObservedGeneration: 2,
			DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, UpdatedNumberScheduled: 2, NumberAvailable: 3, NumberReady: 3}}, message: "Updated: 2/3"},
		{name: "statefulset rolled out", ready: true, obj: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 1, ReadyReplicas: 1, CurrentReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}}},
		{name: "statefulset not ready", obj: &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 1, ReadyReplicas: 0, CurrentReplicas: 1, UpdatedReplicas: 1}}, message: "Ready"},
		{name: "other kinds are not workloads", obj: &corev1.Pod{}, message: "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready, msg := WorkloadReady(tc.obj)
			if ready != tc.ready || !strings.Contains(msg, tc.message) {
				t.Fatalf("WorkloadReady = %v, %q; want %v, containing %q", ready, msg, tc.ready, tc.message)
			}
		})
	}
}
