package upgrade

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
)

// WorkloadReady says whether a Deployment, DaemonSet or StatefulSet has
// finished rolling out and is fully available, with kstatus's reason when
// not. It is kstatus (fluxcd/cli-utils) Compute, the rules Helm's and
// Flux's waiters apply: the controller observed the latest generation,
// every replica runs the current template and is ready and available.
func WorkloadReady(obj runtime.Object) (bool, string) {
	var kind string
	switch obj.(type) {
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.DaemonSet:
		kind = "DaemonSet"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	default:
		return false, fmt.Sprintf("unsupported workload %T", obj)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return false, err.Error()
	}
	u := &unstructured.Unstructured{Object: m}
	// Objects read through a typed client carry no kind; kstatus picks its
	// rules by it.
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(kind))
	res, err := status.Compute(u)
	if err != nil {
		return false, err.Error()
	}
	if res.Status == status.CurrentStatus {
		return true, ""
	}
	return false, res.Message
}
