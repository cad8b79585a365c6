package ingressgateway

import (
	"context"
	"strings"
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

// start runs a manager with only this controller.
func start(t *testing.T) (*testenv.Manager, client.Client) {
	t.Helper()
	m := testenv.StartManager(t, env.Cfg(t), testenv.ManagerOptions{}, Setup)
	return m, m.Client
}

func istioNamespace(t *testing.T, c client.Client) string {
	return testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
}

// ready reports whether the policy is Ready at its generation.
func ready(c client.Client, key types.NamespacedName) error {
	p := &meshv1alpha1.IngressGateway{}
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
	p := &meshv1alpha1.IngressGateway{}
	if err := c.Get(ctx, key, p); err != nil {
		return err.Error()
	}
	if r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition); r != nil && p.Status.ObservedGeneration == p.Generation {
		return r.Reason + ": " + r.Message
	}
	return ""
}

// gateway returns an IngressGateway web with one HTTP listener on 80.
func gateway(ns, name string) *meshv1alpha1.IngressGateway {
	return &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.IngressGatewaySpec{Listeners: []meshv1alpha1.IngressListener{{Name: "http", Port: 80, Protocol: meshv1alpha1.IngressHTTP}}}}
}

// waitReason waits until Ready's "Reason: message" at the generation
// starts with prefix.
func waitReason(t *testing.T, c client.Client, key types.NamespacedName, prefix string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, prefix, func() error {
		if r := reason(c, key); !strings.HasPrefix(r, prefix) {
			return testenv.Errorf("%s", r)
		}
		return nil
	})
}
