package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestResilienceComposition runs a ResiliencePolicy next to a TrafficSplit
// and next to a Canary on the simulated cluster, whose garbage collector
// is real: the composed VirtualService is owned by both and carries the
// policy's retries and fault; a watcher never sees two VirtualServices for
// the host, whichever object comes or goes first; deleting the policy
// leaves the route owner's route (the collector and the recompose drop the
// policy's reference); deleting the route owner deletes the composed route
// and gives the policy its own again; deleting both leaves none.
func TestResilienceComposition(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{}})
	c := harness.StartManager(t, sim.Config).Client
	istio := map[string]string{"istio-injection": "enabled"}

	t.Run("split and policy", func(t *testing.T) {
		const ns = "rc-split"
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: istio}})
		for _, s := range []string{"web", "web-v1", "web-v2"} {
			mustCreate(t, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s, Namespace: ns},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": s}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}})
		}
		rw := testenv.WatchRoutes(t, sim.Config, ns, "web")
		start := time.Now()
		mustCreate(t, c, rcPolicy(ns))
		rcRoutes(t, c, ns, "resilience[ResiliencePolicy/resilience*]{:3:fault}")
		mustCreate(t, c, rcSplit(ns))
		rcRoutes(t, c, ns, "web[TrafficSplit/web*,ResiliencePolicy/resilience]{:3:fault}")
		t.Logf("policy's own route replaced by the composed one in %s", time.Since(start).Round(10*time.Millisecond))
		// The split goes first: the collector keeps the route while the
		// policy owns it; the policy deletes it and writes its own.
		mustDelete(t, c, rcSplit(ns))
		rcRoutes(t, c, ns, "resilience[ResiliencePolicy/resilience*]{:3:fault}")
		// And back; then the policy goes first.
		mustCreate(t, c, rcSplit(ns))
		rcRoutes(t, c, ns, "web[TrafficSplit/web*,ResiliencePolicy/resilience]{:3:fault}")
		mustDelete(t, c, rcPolicy(ns))
		rcRoutes(t, c, ns, "web[TrafficSplit/web*]{}")
		// The last owner goes: the collector deletes the route.
		mustDelete(t, c, rcSplit(ns))
		rcRoutes(t, c, ns, "")
		if n, seen := rw.Max(); n != 1 {
			t.Fatalf("%d VirtualServices for web at once (in order %v)", n, seen)
		}
	})

	t.Run("Canary and policy", func(t *testing.T) {
		const ns = "rc-canary"
		rw := testenv.WatchRoutes(t, sim.Config, ns, "web")
		spec := cnSpec("web", "http://127.0.0.1:1")
		spec.Analysis.MetricsServer, spec.Analysis.Metrics = nil, nil
		key := cnCreate(t, c, ns, istio, nil, spec)
		cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
		rcRoutes(t, c, ns, "web[Canary/web*]{}")
		mustCreate(t, c, rcPolicy(ns))
		rcRoutes(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3:fault}")
		harness.Eventually(t, 30*time.Second, "policy Ready, composed with the Canary", func() error {
			rp := &meshv1alpha1.ResiliencePolicy{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(rcPolicy(ns)), rp); err != nil {
				return err
			}
			if r := apimeta.FindStatusCondition(rp.Status.Conditions, meshv1alpha1.ReadyCondition); r == nil || r.Status != metav1.ConditionTrue || rp.Status.ComposedWith != "web" {
				return fmt.Errorf("Ready %+v composedWith %q", r, rp.Status.ComposedWith)
			}
			return nil
		})
		mustDelete(t, c, rcPolicy(ns))
		rcRoutes(t, c, ns, "web[Canary/web*]{}")
		mustCreate(t, c, rcPolicy(ns))
		rcRoutes(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3:fault}")
		// The Canary goes first (its finalizer hands the workload back and
		// deletes the route): the policy writes its own.
		mustDelete(t, c, &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns}})
		rcRoutes(t, c, ns, "resilience[ResiliencePolicy/resilience*]{:3:fault}")
		if n, seen := rw.Max(); n != 1 {
			t.Fatalf("%d VirtualServices for web at once (in order %v)", n, seen)
		}
	})
}

func rcPolicy(ns string) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "resilience", Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{
			TargetRef:        meshv1alpha1.ServiceReference{Name: "web"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr.To[int32](5)},
			Retries:          &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3}},
			FaultInjection:   &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}},
		}}
}

func rcSplit(ns string) *meshv1alpha1.TrafficSplit {
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
}

func mustCreate(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
}

func mustDelete(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Delete(ctx, o); err != nil {
		t.Fatal(err)
	}
}

// rcRoutes waits until the VirtualServices for host web render as want:
// "name[owner references, * = controller]{per route: :retries:fault}".
func rcRoutes(t *testing.T, c client.Client, ns, want string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "VirtualServices "+want, func() error {
		var list istionetworking.VirtualServiceList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var out []string
		for _, vs := range list.Items {
			if len(vs.Spec.Hosts) == 0 || vs.Spec.Hosts[0] != "web" {
				continue
			}
			var refs, routes []string
			for _, r := range vs.OwnerReferences {
				s := r.Kind + "/" + r.Name
				if r.Controller != nil && *r.Controller {
					s += "*"
				}
				refs = append(refs, s)
			}
			for _, hr := range vs.Spec.Http {
				s := ""
				if hr.Retries != nil {
					s += fmt.Sprintf(":%d", hr.Retries.Attempts)
				}
				if hr.Fault != nil {
					s += ":fault"
				}
				routes = append(routes, s)
			}
			out = append(out, vs.Name+"["+strings.Join(refs, ",")+"]{"+strings.Join(routes, ",")+"}")
		}
		if got := strings.Join(out, " "); got != want {
			return fmt.Errorf("VirtualServices for web: %q", got)
		}
		return nil
	})
}
