package zerotrustpolicy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch

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
	// pods are the stale pods.
	pods []corev1.Pod
	// restart says what rolloutRestart did, empty when it is off.
	restart string
	// requeue is when to look again while restarts are under way.
	requeue time.Duration
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
			out.pods = append(out.pods, *pod)
		}
	}
	slices.Sort(out.stale)
	return out, nil
}

// RestartAnnotation is set on the pod templates of the workloads
// rolloutRestart restarts; its value names the policy, its generation and
// the setting's value, so each workload restarts once per change.
const RestartAnnotation = "meshplane.io/policy-restart"

// defaultRestartPause separates two batches when rolloutRestart.pause is
// unset; it is also how often a batch's readiness is checked.
const defaultRestartPause = 5 * time.Second

// workload is a restartable owner of stale pods, read live.
type workload struct {
	kind, name string
	obj        client.Object
}

// rollout restarts, when spec.rolloutRestart is enabled, the next batch
// of the workloads owning stale pods, once the previously restarted ones
// are ready again (upgrade.WorkloadReady), with upgrade.Restart, the
// restart of MeshInstall upgrades.
func (r *Reconciler) rollout(ctx context.Context, p *meshv1alpha1.ZeroTrustPolicy, px *proxies) error {
	rr := p.Spec.RolloutRestart
	if rr == nil || !rr.Enabled || len(px.pods) == 0 {
		return nil
	}
	ws, err := r.owners(ctx, p.Namespace, px.pods)
	if err != nil {
		return err
	}
	value := fmt.Sprintf("%s/%d/%s", p.Name, p.Generation, px.want)
	var done, pending []workload
	for _, w := range ws {
		if templateAnnotations(w.obj)[RestartAnnotation] == value {
			done = append(done, w)
		} else {
			pending = append(pending, w)
		}
	}
	px.requeue = defaultRestartPause
	for _, w := range done {
		if ok, msg := upgrade.WorkloadReady(w.obj); !ok {
			px.restart = fmt.Sprintf("rolloutRestart: waiting for %s %s (%s); %d workload(s) left", w.kind, w.name, msg, len(pending))
			return nil
		}
	}
	batch := pending[:min(int(max(rr.BatchSize, 1)), len(pending))]
	for _, w := range batch {
		if err := upgrade.Restart(ctx, r.Client, p.Namespace, w.kind, w.name, RestartAnnotation, value); err != nil {
			return err
		}
	}
	if rr.Pause != nil && rr.Pause.Duration > px.requeue {
		px.requeue = rr.Pause.Duration
	}
	names := make([]string, len(batch))
	for i, w := range batch {
		names[i] = w.kind + " " + w.name
	}
	px.restart = fmt.Sprintf("rolloutRestart: restarted %s; %d workload(s) left", strings.Join(names, ", "), len(pending)-len(batch))
	return nil
}

// templateAnnotations returns a workload's pod-template annotations.
func templateAnnotations(obj client.Object) map[string]string {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Template.Annotations
	case *appsv1.StatefulSet:
		return w.Spec.Template.Annotations
	case *appsv1.DaemonSet:
		return w.Spec.Template.Annotations
	}
	return nil
}

// owners returns the Deployments (through their ReplicaSets),
// StatefulSets and DaemonSets that own pods, sorted, read without the
// cache; pods without such an owner cannot be restarted and are left.
func (r *Reconciler) owners(ctx context.Context, ns string, pods []corev1.Pod) ([]workload, error) {
	seen := map[string]bool{}
	var out []workload
	for i := range pods {
		ref := metav1.GetControllerOf(&pods[i])
		if ref == nil {
			continue
		}
		kind, name := ref.Kind, ref.Name
		if kind == "ReplicaSet" {
			rs := &appsv1.ReplicaSet{}
			if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rs); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("reading ReplicaSet %s/%s: %w", ns, name, err)
			}
			if ref = metav1.GetControllerOf(rs); ref == nil {
				continue
			}
			kind, name = ref.Kind, ref.Name
		}
		var obj client.Object
		switch kind {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		default:
			continue
		}
		if seen[kind+"/"+name] {
			continue
		}
		seen[kind+"/"+name] = true
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading %s %s/%s: %w", kind, ns, name, err)
		}
		out = append(out, workload{kind: kind, name: name, obj: obj})
	}
	slices.SortFunc(out, func(a, b workload) int { return strings.Compare(a.kind+"/"+a.name, b.kind+"/"+b.name) })
	return out, nil
}
