package resiliencepolicy

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// env is the package's envtest API server; every test uses its own
// namespaces.
var env testenv.Package

func TestMain(m *testing.M) { testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{}) }

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// start runs a manager with this controller and the TrafficSplit
// controller (composition) and returns it with an uncached client.
func start(t *testing.T) (*testenv.Manager, client.Client) {
	t.Helper()
	m := testenv.StartManager(t, env.Cfg(t), testenv.ManagerOptions{}, Setup, trafficsplit.Setup)
	return m, m.Client
}

func istioNamespace(t *testing.T, c client.Client) string {
	return testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
}

func service(ns, name string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}}}
	for i, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + string(rune('a'+i)), Port: p})
	}
	return s
}

func services(t *testing.T, c client.Client, ns string, names ...string) {
	t.Helper()
	for _, n := range names {
		must(t, c.Create(ctx, service(ns, n, 8080)))
	}
}

// policy is a ResiliencePolicy for Service web with a DestinationRule
// field and route-level fields.
func policy(ns, name string) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{
			TargetRef:        meshv1alpha1.ServiceReference{Name: "web"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](5)},
			Retries:          &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3}},
			FaultInjection:   &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}},
		}}
}

func split(ns, name string) *meshv1alpha1.TrafficSplit {
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
}

func condition(st *meshv1alpha1.CommonStatus, typ string) string {
	c := status.Get(st, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func waitReady(t *testing.T, c client.Client, key types.NamespacedName) *meshv1alpha1.ResiliencePolicy {
	t.Helper()
	rp := &meshv1alpha1.ResiliencePolicy{}
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready "+key.String(), func() error {
		if err := c.Get(ctx, key, rp); err != nil {
			return err
		}
		if !status.IsTrue(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition) || rp.Status.ObservedGeneration != rp.Generation {
			return testenv.Errorf("%s", condition(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	return rp
}

func waitReason(t *testing.T, c client.Client, key types.NamespacedName, reason string) *meshv1alpha1.ResiliencePolicy {
	t.Helper()
	rp := &meshv1alpha1.ResiliencePolicy{}
	testenv.Eventually(t, testenv.DefaultTimeout, reason+" on "+key.String(), func() error {
		if err := c.Get(ctx, key, rp); err != nil {
			return err
		}
		r := status.Get(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition)
		if r == nil || r.Status != metav1.ConditionFalse || r.Reason != reason || rp.Status.ObservedGeneration != rp.Generation {
			return testenv.Errorf("%s", condition(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	return rp
}
