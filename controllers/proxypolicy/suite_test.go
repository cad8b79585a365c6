package proxypolicy

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// env is the package's envtest API server; every test uses its own
// namespaces.
var env testenv.Package

func TestMain(m *testing.M) { testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{}) }

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// start runs a manager with only this controller and returns it with an
// uncached client.
func start(t *testing.T) (*testenv.Manager, client.Client) {
	t.Helper()
	m := testenv.StartManager(t, env.Cfg(t), testenv.ManagerOptions{}, Setup)
	return m, m.Client
}

func istioNamespace(t *testing.T, c client.Client) string {
	return testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
}

// condition returns "Reason: message" of condition typ once observed at
// the generation.
func condition(c client.Client, key types.NamespacedName, typ string) string {
	p := &meshv1alpha1.ProxyPolicy{}
	if err := c.Get(ctx, key, p); err != nil {
		return err.Error()
	}
	// Reconciling (work in progress) is reported before the generation is
	// observed.
	if r := status.Get(&p.Status.CommonStatus, typ); r != nil && (p.Status.ObservedGeneration == p.Generation || typ == meshv1alpha1.ReconcilingCondition) {
		return string(r.Status) + " " + r.Reason + ": " + r.Message
	}
	return ""
}

// ready reports whether the policy is Ready at its generation.
func ready(c client.Client, key types.NamespacedName) error {
	if r := condition(c, key, meshv1alpha1.ReadyCondition); len(r) < 4 || r[:4] != "True" {
		return testenv.Errorf("%s", r)
	}
	return nil
}

// deployment is a one-container Deployment whose pods carry app=name and
// the given pod-template annotations.
func deployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
			},
		},
	}
}

// policy is a ProxyPolicy with a CPU request and a memory limit for the
// workloads labelled app=<app> (every workload when app is empty).
func policy(ns, name, app string) *meshv1alpha1.ProxyPolicy {
	p := &meshv1alpha1.ProxyPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{CPURequest: "100m", MemoryLimit: "256Mi"}}}
	if app != "" {
		p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	return p
}

// readyPolicy creates p and waits until it is Ready.
func readyPolicy(t *testing.T, c client.Client, p *meshv1alpha1.ProxyPolicy) types.NamespacedName {
	t.Helper()
	must(t, c.Create(ctx, p))
	key := client.ObjectKeyFromObject(p)
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
	return key
}

// templateAnnotations returns the pod-template annotations of Deployment
// ns/name.
func templateAnnotationsOf(t *testing.T, c client.Client, ns, name string) map[string]string {
	t.Helper()
	d := &appsv1.Deployment{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d))
	return d.Spec.Template.Annotations
}
