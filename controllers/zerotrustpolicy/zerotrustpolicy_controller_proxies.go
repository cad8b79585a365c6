package zerotrustpolicy

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// proxies is what the namespace's running pods' proxies started with, for
// a mesh whose proxies read part of the policy only when they start.
type proxies struct {
	// checked is false when the mesh reads the policy live.
	checked bool
	// setting names it, want is the value the outputs set.
	setting, want string
	// stale are the running meshed pods that started with another value,
	// "name (value)", sorted.
	stale []string
}

// checkProxies compares each running meshed pod's start-time value with
// the one objs set. The pods are listed without the cache (one read per
// reconcile; no controller watches pods), and the method is exact: the
// mesh reads the value each proxy was started with from the pod itself,
// so no clock or annotation timestamp is compared.
func (r *Reconciler) checkProxies(ctx context.Context, ns string, provider meshv1alpha1.Provider, objs []client.Object) (proxies, error) {
	sp, ok := r.Registry.StartupPolicy(provider)
	if !ok {
		return proxies{}, nil
	}
	want, ok := sp.StartupValue(objs)
	if !ok {
		return proxies{}, nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		return proxies{}, fmt.Errorf("listing the pods of namespace %s: %w", ns, err)
	}
	out := proxies{checked: true, setting: sp.StartupSetting(), want: want}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if have, ok := sp.ProxyValue(pod); ok && have != want {
			out.stale = append(out.stale, fmt.Sprintf("%s (%s)", pod.Name, have))
		}
	}
	slices.Sort(out.stale)
	return out, nil
}
