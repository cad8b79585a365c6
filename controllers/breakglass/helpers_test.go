package breakglass_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	bgctrl "github.com/meshplane/meshplane/controllers/breakglass"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// env is the package's API server (TestMain), shared by its tests: each
// works on namespaces and cluster-scoped objects of its own and removes
// what would change another's outcome.
var env testenv.Package

func TestMain(m *testing.M) { testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{}) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startManager runs, until the (sub)test ends, a manager with the
// BreakGlass controller (slowed down when qps > 0: one worker and a
// rate-limited writer; left out when qps < 0) plus extra setups.
func startManager(t *testing.T, cfg *rest.Config, qps float32, extra ...testenv.Setup) *testenv.Manager {
	t.Helper()
	setups := extra
	if qps >= 0 {
		setups = append([]testenv.Setup{func(mgr *manager.Manager) error {
			r, err := bgctrl.New(mgr)
			if err != nil {
				return err
			}
			r.RestartPace = 700 * time.Millisecond
			if qps > 0 {
				slow := rest.CopyConfig(cfg)
				slow.QPS, slow.Burst = qps, 1
				if r.Writer, err = client.New(slow, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()}); err != nil {
					return err
				}
				r.Workers = 1
			}
			return r.SetupWithManager(mgr)
		}}, extra...)
	}
	return testenv.StartManager(t, cfg, testenv.ManagerOptions{}, setups...)
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, what, f)
}

func breakGlass(name string, mutate func(*meshv1alpha1.BreakGlass)) *meshv1alpha1.BreakGlass {
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod is down (INC-1)", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
	if mutate != nil {
		mutate(bg)
	}
	return bg
}

func cond(bg *meshv1alpha1.BreakGlass, typ string) string {
	c := status.Get(&bg.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func waitPhase(t *testing.T, c client.Client, name string, phase meshv1alpha1.BreakGlassPhase) *meshv1alpha1.BreakGlass {
	t.Helper()
	bg := &meshv1alpha1.BreakGlass{}
	eventually(t, "BreakGlass "+name+" "+string(phase), func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, bg); err != nil {
			return err
		}
		if bg.Status.Phase != phase {
			return fmt.Errorf("phase %q, Ready %s", bg.Status.Phase, cond(bg, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	return bg
}

func waitGone(t *testing.T, c client.Client, name string) {
	t.Helper()
	eventually(t, "BreakGlass "+name+" deleted", func() error {
		bg := &meshv1alpha1.BreakGlass{}
		err := c.Get(context.Background(), client.ObjectKey{Name: name}, bg)
		if err == nil {
			return fmt.Errorf("still there: phase %s, %s", bg.Status.Phase, cond(bg, meshv1alpha1.ReadyCondition))
		}
		return client.IgnoreNotFound(err)
	})
}

// snapshot renders, as JSON, exactly the fields a BreakGlass may change:
// metadata.labels and metadata.annotations of namespaces, webhooks[] of
// webhook configurations, spec of policies and the pod-template
// annotations of workloads.
func snapshot(t *testing.T, c client.Client, refs ...schema.GroupVersionKind) string {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	var nss corev1.NamespaceList
	must(t, c.List(ctx, &nss))
	for _, ns := range nss.Items {
		out["ns/"+ns.Name] = map[string]any{"labels": ns.Labels, "annotations": ns.Annotations}
	}
	var mw admissionregistrationv1.MutatingWebhookConfigurationList
	must(t, c.List(ctx, &mw))
	for _, w := range mw.Items {
		out["mwc/"+w.Name] = w.Webhooks
	}
	var vw admissionregistrationv1.ValidatingWebhookConfigurationList
	must(t, c.List(ctx, &vw))
	for _, w := range vw.Items {
		out["vwc/"+w.Name] = w.Webhooks
	}
	for _, gvk := range refs {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		must(t, c.List(ctx, list))
		for _, p := range list.Items {
			out[gvk.Kind+"/"+p.GetNamespace()+"/"+p.GetName()] = p.Object["spec"]
		}
	}
	b, err := json.MarshalIndent(out, "", " ")
	must(t, err)
	return string(b)
}

// diff returns the differing lines of two snapshots.
func diff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n  before %s\n  after  %s", i+1, x, y))
			if len(out) > 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// events returns the Events regarding an object, as "type/reason: note".
func events(t *testing.T, c client.Client, namespace, kind, name string) []string {
	t.Helper()
	var list eventsv1.EventList
	must(t, c.List(context.Background(), &list, client.InNamespace(namespace)))
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			out = append(out, e.Type+"/"+e.Reason+": "+e.Note)
		}
	}
	return out
}

func hasEvent(evs []string, prefix string) bool {
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}
