package zerotrustpolicy

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

func linkerdNamespace(t *testing.T, c client.Client) string {
	return testenv.AnnotatedNamespace(t, c, nil, map[string]string{"linkerd.io/inject": "enabled"})
}

// ready reports whether the policy is Ready at its generation.
func ready(c client.Client, key types.NamespacedName) error {
	p := &meshv1alpha1.ZeroTrustPolicy{}
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
	p := &meshv1alpha1.ZeroTrustPolicy{}
	if err := c.Get(ctx, key, p); err != nil {
		return err.Error()
	}
	if r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition); r != nil && p.Status.ObservedGeneration == p.Generation {
		return r.Reason + ": " + r.Message
	}
	return ""
}

func conditionOf(p *meshv1alpha1.ZeroTrustPolicy, typ string) string {
	c := status.Get(&p.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func policy(ns, name string) *meshv1alpha1.ZeroTrustPolicy {
	return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
			From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}},
		}}}}
}

// readyPolicy creates the policy web in ns and waits until it is Ready.
func readyPolicy(t *testing.T, c client.Client, ns, what string) types.NamespacedName {
	t.Helper()
	must(t, c.Create(ctx, policy(ns, "web")))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready on "+what, func() error { return ready(c, key) })
	return key
}
