package zerotrustpolicy

import (
	"testing"

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
			"not deny (the proxy reads it only when it starts): web-old (all-unauthenticated); restart their workloads (kubectl rollout restart) to apply it"
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
