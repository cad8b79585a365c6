package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	bgctrl "github.com/meshplane/meshplane/controllers/breakglass"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// errKilled is what every write of a killed operator gets.
var errKilled = errors.New("operator killed by the test")

// moment is a point in a BreakGlass's writes: the write it matches, and
// whether the operator dies just before it or just after it.
type moment struct {
	name  string
	match func(obj client.Object, restoring bool) bool
	after bool
}

func kindOf(o client.Object) string {
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	switch o.(type) {
	case *corev1.Secret:
		return "Secret"
	case *corev1.Namespace:
		return "Namespace"
	case *meshv1alpha1.BreakGlass:
		return "BreakGlass"
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		return "MutatingWebhookConfiguration"
	}
	return fmt.Sprintf("%T", o)
}

// faults wraps the BreakGlass controller's clients: once armed, at the
// moment it dies (every later write fails, as if the process were gone)
// or pauses the API server for a while.
type faults struct {
	at        moment
	armed     atomic.Bool
	restoring atomic.Bool
	dead      atomic.Bool
	fired     chan struct{}
	once      sync.Once
	// pause, when set, is called at the moment instead of dying.
	pause func()
}

func (f *faults) write(ctx context.Context, obj client.Object, do func() error) error {
	if f.dead.Load() {
		return errKilled
	}
	hit := f.armed.Load() && f.at.match(obj, f.restoring.Load())
	if hit && f.pause != nil {
		f.once.Do(func() { close(f.fired); f.pause() })
		return do()
	}
	if hit && !f.at.after {
		f.once.Do(func() { f.dead.Store(true); close(f.fired) })
		return errKilled
	}
	err := do()
	if hit && err == nil {
		f.once.Do(func() { f.dead.Store(true); close(f.fired) })
	}
	return err
}

// startFaulty runs, until the (sub)test ends, a manager with only the
// BreakGlass controller, its clients wrapped by f.
func startFaulty(t *testing.T, sim *cluster.Simulated, f *faults) {
	t.Helper()
	testenv.StartManager(t, sim.Config, testenv.ManagerOptions{}, func(mgr *manager.Manager) error {
		r, err := bgctrl.New(mgr)
		if err != nil {
			return err
		}
		r.Writer = &withFaults{Client: r.Writer, f: f}
		r.Client = &withFaults{Client: r.Client, f: f}
		return r.SetupWithManager(mgr)
	})
}

// withFaults routes a client's writes through f (reads are untouched).
type withFaults struct {
	client.Client
	f *faults
}

func (w *withFaults) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return w.f.write(ctx, obj, func() error { return w.Client.Create(ctx, obj, opts...) })
}

func (w *withFaults) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return w.f.write(ctx, obj, func() error { return w.Client.Delete(ctx, obj, opts...) })
}

func (w *withFaults) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	return w.f.write(ctx, obj, func() error { return w.Client.Patch(ctx, obj, p, opts...) })
}

func (w *withFaults) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return w.f.write(ctx, obj, func() error { return w.Client.Update(ctx, obj, opts...) })
}

func (w *withFaults) Status() client.SubResourceWriter {
	return &statusWithFaults{SubResourceWriter: w.Client.Status(), f: w.f}
}

type statusWithFaults struct {
	client.SubResourceWriter
	f *faults
}

func (s *statusWithFaults) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.f.write(ctx, obj, func() error { return s.SubResourceWriter.Patch(ctx, obj, p, opts...) })
}

func (s *statusWithFaults) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	return s.f.write(ctx, obj, func() error { return s.SubResourceWriter.Update(ctx, obj, opts...) })
}

// TestBreakGlassFaults kills the operator at each moment of a BreakGlass's
// engage and restore, and pauses the API server (SIGSTOP) in the middle of
// both: the next operator finishes, and the end state is exactly the state
// before the BreakGlass.
func TestBreakGlassFaults(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	c := testenv.NewClient(t, sim.Config)
	istioOutage(t, c)
	for _, n := range []string{"f-shop", "f-cart"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n,
			Labels: map[string]string{"istio-injection": "enabled"}, Annotations: map[string]string{"team": n}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: harness.OperatorNamespace}}); err != nil {
		t.Fatal(err)
	}
	before := meshState(t, c)
	engaging := func(m func(client.Object) bool) func(client.Object, bool) bool {
		return func(o client.Object, restoring bool) bool { return !restoring && m(o) }
	}
	restoringOnly := func(m func(client.Object) bool) func(client.Object, bool) bool {
		return func(o client.Object, restoring bool) bool { return restoring && m(o) }
	}
	isKind := func(k string) func(client.Object) bool { return func(o client.Object) bool { return kindOf(o) == k } }
	isWebhook := isKind("MutatingWebhookConfiguration")
	for _, at := range []moment{
		{name: "after the record Secret is written, before status.record", match: engaging(isKind("Secret")), after: true},
		{name: "after status.record, before the webhook patch", match: engaging(isWebhook)},
		{name: "after the webhook patch, before the namespaces", match: engaging(isWebhook), after: true},
		{name: "while restoring, before the webhook patch", match: restoringOnly(isWebhook)},
		{name: "while restoring, after the webhook patch", match: restoringOnly(isWebhook), after: true},
		{name: "while restoring, before the record is deleted", match: restoringOnly(isKind("Secret"))},
	} {
		t.Run("operator killed "+at.name, func(t *testing.T) {
			start := time.Now()
			restore := strings.HasPrefix(at.name, "while restoring")
			bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fault-%d", time.Now().UnixNano()%1e6)},
				Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod unreachable (INC-7)", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
			f := &faults{at: at, fired: make(chan struct{})}
			f.armed.Store(!restore)
			t.Run("first operator", func(t *testing.T) {
				startFaulty(t, sim, f)
				if err := c.Create(ctx, bg); err != nil {
					t.Fatal(err)
				}
				if restore {
					waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
					f.restoring.Store(true)
					f.armed.Store(true)
					if err := c.Delete(ctx, bg); err != nil {
						t.Fatal(err)
					}
				}
				select {
				case <-f.fired:
				case <-time.After(30 * time.Second):
					t.Fatal("the moment never came")
				}
			})
			t.Run("next operator", func(t *testing.T) {
				harness.StartManager(t, sim.Config)
				if !restore {
					got := waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
					if got.Status.Touched.Namespaces != 2 || got.Status.Record == nil {
						t.Fatalf("engaged after the restart: touched %+v record %v", got.Status.Touched, got.Status.Record != nil)
					}
					if err := c.Delete(ctx, bg); err != nil {
						t.Fatal(err)
					}
				}
				waitGoneBG(t, c, bg)
			})
			if after := meshState(t, c); after != before {
				t.Fatalf("not exactly the state before the BreakGlass:\nbefore %s\nafter  %s", before, after)
			}
			if d := time.Since(start); d > 60*time.Second {
				t.Errorf("case took %s (bound 60s)", d)
			}
		})
	}
	for _, restore := range []bool{false, true} {
		name := "API server paused while engaging"
		if restore {
			name = "API server paused while restoring"
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pause-%v", restore)},
				Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod unreachable (INC-8)", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
			// Paused at the first namespace patch (after the webhooks):
			// the API server answers nothing for 3 s.
			f := &faults{at: moment{match: func(o client.Object, r bool) bool { return r == restore && kindOf(o) == "Namespace" }}, fired: make(chan struct{})}
			f.pause = func() {
				if err := sim.Pause(cluster.ComponentKubeAPIServer); err != nil {
					t.Error(err)
					return
				}
				go func() {
					time.Sleep(3 * time.Second)
					if err := sim.Resume(cluster.ComponentKubeAPIServer); err != nil {
						t.Error(err)
					}
				}()
			}
			f.armed.Store(!restore)
			startFaulty(t, sim, f)
			if err := c.Create(ctx, bg); err != nil {
				t.Fatal(err)
			}
			waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
			if restore {
				f.restoring.Store(true)
				f.armed.Store(true)
			}
			if err := c.Delete(ctx, bg); err != nil {
				t.Fatal(err)
			}
			waitGoneBG(t, c, bg)
			select {
			case <-f.fired:
			default:
				t.Fatal("the API server was never paused")
			}
			if after := meshState(t, c); after != before {
				t.Fatalf("not exactly the state before the BreakGlass:\nbefore %s\nafter  %s", before, after)
			}
			if d := time.Since(start); d > 60*time.Second {
				t.Errorf("case took %s (bound 60s)", d)
			}
		})
	}
}

func waitBG(t *testing.T, c client.Client, bg *meshv1alpha1.BreakGlass, p meshv1alpha1.BreakGlassPhase) *meshv1alpha1.BreakGlass {
	t.Helper()
	got := &meshv1alpha1.BreakGlass{}
	harness.Eventually(t, 30*time.Second, "BreakGlass "+bg.Name+" "+string(p), func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(bg), got); err != nil {
			return err
		}
		if got.Status.Phase != p {
			return fmt.Errorf("phase %q", got.Status.Phase)
		}
		return nil
	})
	return got
}

func waitGoneBG(t *testing.T, c client.Client, bg *meshv1alpha1.BreakGlass) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "BreakGlass "+bg.Name+" restored and gone", func() error {
		got := &meshv1alpha1.BreakGlass{}
		err := c.Get(ctx, client.ObjectKeyFromObject(bg), got)
		if err == nil {
			return fmt.Errorf("still there, phase %s", got.Status.Phase)
		}
		return client.IgnoreNotFound(err)
	})
}
