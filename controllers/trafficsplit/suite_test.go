package trafficsplit

import (
	"context"
	"testing"

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

func ptr[T any](v T) *T { return &v }

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

// istioNamespace and linkerdNamespace create a namespace of the test that
// the mesh serves.
func istioNamespace(t *testing.T, c client.Client) string {
	return testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
}

func linkerdNamespace(t *testing.T, c client.Client) string {
	return testenv.AnnotatedNamespace(t, c, nil, map[string]string{"linkerd.io/inject": "enabled"})
}

func services(t *testing.T, c client.Client, ns string, names ...string) {
	t.Helper()
	for _, n := range names {
		must(t, c.Create(ctx, service(ns, n, 8080)))
	}
}

func service(ns, name string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + string(rune('a'+p%26)), Port: p})
	}
	return s
}

func split(ns, name string) *meshv1alpha1.TrafficSplit {
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
}

func condition(ts *meshv1alpha1.TrafficSplit, typ string) string {
	c := status.Get(&ts.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func waitReady(t *testing.T, c client.Client, key types.NamespacedName) *meshv1alpha1.TrafficSplit {
	t.Helper()
	ts := &meshv1alpha1.TrafficSplit{}
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready "+key.String(), func() error {
		if err := c.Get(ctx, key, ts); err != nil {
			return err
		}
		if !status.IsTrue(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition) || ts.Status.ObservedGeneration != ts.Generation {
			return testenv.Errorf("%s", condition(ts, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	return ts
}

func waitReason(t *testing.T, c client.Client, key types.NamespacedName, reason string) *meshv1alpha1.TrafficSplit {
	t.Helper()
	ts := &meshv1alpha1.TrafficSplit{}
	testenv.Eventually(t, testenv.DefaultTimeout, reason+" on "+key.String(), func() error {
		if err := c.Get(ctx, key, ts); err != nil {
			return err
		}
		r := status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition)
		if r == nil || r.Status != metav1.ConditionFalse || r.Reason != reason || ts.Status.ObservedGeneration != ts.Generation {
			return testenv.Errorf("%s", condition(ts, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	return ts
}

// readySplit creates the Services web, web-v1 and web-v2 in ns and the
// split web (90/10), and waits until it is Ready.
func readySplit(t *testing.T, c client.Client, ns string) (types.NamespacedName, *meshv1alpha1.TrafficSplit) {
	t.Helper()
	services(t, c, ns, "web", "web-v1", "web-v2")
	must(t, c.Create(ctx, split(ns, "web")))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	return key, waitReady(t, c, key)
}
