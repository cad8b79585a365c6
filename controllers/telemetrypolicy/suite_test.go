package telemetrypolicy

import (
	"context"
	"testing"

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

func linkerdNamespace(t *testing.T, c client.Client, annotations map[string]string) string {
	a := map[string]string{"linkerd.io/inject": "enabled"}
	for k, v := range annotations {
		a[k] = v
	}
	return testenv.AnnotatedNamespace(t, c, nil, a)
}

// ready reports whether the policy is Ready at its generation.
func ready(c client.Client, key types.NamespacedName) error {
	p := &meshv1alpha1.TelemetryPolicy{}
	if err := c.Get(ctx, key, p); err != nil {
		return err
	}
	r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition)
	if r == nil {
		return testenv.Errorf("no Ready")
	}
	if r.Status != metav1.ConditionTrue || p.Status.ObservedGeneration != p.Generation {
		return testenv.Errorf("%s: %s", r.Reason, r.Message)
	}
	return nil
}

// reason returns "Reason: message" of Ready once observed at the
// generation.
func reason(c client.Client, key types.NamespacedName) string {
	p := &meshv1alpha1.TelemetryPolicy{}
	if err := c.Get(ctx, key, p); err != nil {
		return err.Error()
	}
	if r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition); r != nil && p.Status.ObservedGeneration == p.Generation {
		return r.Reason + ": " + r.Message
	}
	return ""
}

// policy is a namespace-wide policy with tracing at 10% and access logs
// (Istio), or access logs alone (accessOnly, what Linkerd expresses).
func policy(ns, name string, accessOnly bool) *meshv1alpha1.TelemetryPolicy {
	p := &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.TelemetryPolicySpec{AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true}}}
	if !accessOnly {
		p.Spec.Tracing = &meshv1alpha1.TracingSettings{Enabled: true, SamplingPercentage: "10"}
	}
	return p
}

// readyPolicy creates p and waits until it is Ready.
func readyPolicy(t *testing.T, c client.Client, p *meshv1alpha1.TelemetryPolicy) types.NamespacedName {
	t.Helper()
	must(t, c.Create(ctx, p))
	key := client.ObjectKeyFromObject(p)
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
	return key
}
