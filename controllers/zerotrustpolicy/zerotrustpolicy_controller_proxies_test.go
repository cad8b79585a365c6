package zerotrustpolicy

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// meshedPod creates pod name in ns with Linkerd's proxy started with the
// given default inbound policy ("" for no proxy), and annotations.
func meshedPod(t *testing.T, c client.Client, ns, name, policy string, annotations map[string]string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	if policy != "" {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "linkerd-proxy", Image: "proxy",
			Env: []corev1.EnvVar{{Name: "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", Value: policy}}})
	}
	must(t, c.Create(ctx, pod))
	return pod
}

func proxiesCurrent(c client.Client, key types.NamespacedName) string {
	p := &meshv1alpha1.ZeroTrustPolicy{}
	if err := c.Get(ctx, key, p); err != nil {
		return err.Error()
	}
	cond := status.Get(&p.Status.CommonStatus, meshv1alpha1.ProxiesCurrentCondition)
	if cond == nil || cond.ObservedGeneration != p.Generation {
		return "no current ProxiesCurrent"
	}
	return string(cond.Status) + "/" + cond.Reason + ": " + cond.Message
}

// TestLinkerdStaleProxies: a Linkerd policy's ProxiesCurrent condition
// counts the running meshed pods whose proxy started with another default
// inbound policy (read from the proxy's environment), skipping unmeshed
// pods and pods with their own annotation, and turns True once they are
// replaced.
func TestLinkerdStaleProxies(t *testing.T) {
	_, c := start(t)
	ns := linkerdNamespace(t, c)
	old := meshedPod(t, c, ns, "web-old", "all-unauthenticated", nil)
	meshedPod(t, c, ns, "web-new", "deny", nil)
	meshedPod(t, c, ns, "plain", "", nil)
	meshedPod(t, c, ns, "own", "all-unauthenticated", map[string]string{"config.linkerd.io/default-inbound-policy": "all-unauthenticated"})
	must(t, c.Create(ctx, policy(ns, "web")))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	testenv.Eventually(t, testenv.DefaultTimeout, "StalePolicy naming web-old", func() error {
		want := "False/StalePolicy: 1 running pod(s) of namespace " + ns + " still enforce the default inbound policy they started with, " +
			"not deny (the proxy reads it only when it starts): web-old (all-unauthenticated); restart their workloads (kubectl rollout restart, or set spec.rolloutRestart.enabled) to apply it"
		if got := proxiesCurrent(c, key); got != want {
			return testenv.Errorf("got  %s\nwant %s", got, want)
		}
		return ready(c, key)
	})

	// The pod's replacement starts with the current policy; a namespace
	// label change (or the 30 s recheck) looks again.
	must(t, c.Delete(ctx, old))
	meshedPod(t, c, ns, "web-old-2", "deny", nil)
	n := &corev1.Namespace{}
	must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
	n.Labels["touched"] = "true"
	must(t, c.Update(ctx, n))
	testenv.Eventually(t, testenv.DefaultTimeout, "ProxiesCurrent True", func() error {
		want := "True/Succeeded: every running meshed pod of namespace " + ns + " started with default inbound policy deny"
		if got := proxiesCurrent(c, key); got != want {
			return testenv.Errorf("got  %s\nwant %s", got, want)
		}
		return nil
	})
}

// staleDeployment creates Deployment name in ns with a ReplicaSet and a
// pod whose proxy started with policy, owned as the controllers would.
func staleDeployment(t *testing.T, c client.Client, ns, name, policy string) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}}}
	must(t, c.Create(ctx, d))
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
	must(t, c.Create(ctx, rs))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-1-x", Namespace: ns, Labels: labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}, {Name: "linkerd-proxy", Image: "proxy",
			Env: []corev1.EnvVar{{Name: "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", Value: policy}}}}}}
	must(t, c.Create(ctx, pod))
	return d
}

func ptrTo[T any](v T) *T { return &v }

func restartValue(c client.Client, ns, name string) string {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		return err.Error()
	}
	return d.Spec.Template.Annotations[RestartAnnotation]
}

// TestLinkerdRolloutRestart: with spec.rolloutRestart, the workloads
// owning stale pods restart one batch at a time, the next batch only once
// the previous one is ready again.
func TestLinkerdRolloutRestart(t *testing.T) {
	_, c := start(t)
	ns := linkerdNamespace(t, c)
	a := staleDeployment(t, c, ns, "a", "all-unauthenticated")
	staleDeployment(t, c, ns, "b", "all-unauthenticated")
	staleDeployment(t, c, ns, "c", "deny")
	p := policy(ns, "web")
	p.Spec.RolloutRestart = &meshv1alpha1.RolloutRestart{Enabled: true, BatchSize: 1}
	must(t, c.Create(ctx, p))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	testenv.Eventually(t, testenv.DefaultTimeout, "first batch: Deployment a", func() error {
		if v := restartValue(c, ns, "a"); v != "web/1/deny" {
			return testenv.Errorf("a: %q", v)
		}
		return nil
	})
	testenv.Eventually(t, testenv.DefaultTimeout, "waiting for a", func() error {
		if got := proxiesCurrent(c, key); !strings.Contains(got, "rolloutRestart: waiting for Deployment a (") ||
			!strings.Contains(got, "; 1 workload(s) left") {
			return testenv.Errorf("%s", got)
		}
		return nil
	})
	if v := restartValue(c, ns, "b"); v != "" {
		t.Fatalf("b restarted before a was ready: %q", v)
	}
	if v := restartValue(c, ns, "c"); v != "" {
		t.Fatalf("c runs the current policy and was restarted: %q", v)
	}

	// a rolled out: the next batch restarts b.
	must(t, c.Get(ctx, client.ObjectKeyFromObject(a), a))
	a.Status = appsv1.DeploymentStatus{ObservedGeneration: a.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
	must(t, c.Status().Update(ctx, a))
	testenv.Eventually(t, testenv.DefaultTimeout, "second batch: Deployment b", func() error {
		if v := restartValue(c, ns, "b"); v != "web/1/deny" {
			return testenv.Errorf("b: %q (%s)", v, proxiesCurrent(c, key))
		}
		return nil
	})
}
