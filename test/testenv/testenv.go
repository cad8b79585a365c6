// Package testenv is the one test harness of Meshplane's controller tests:
// a manager against a real API server with only the controllers a test
// names, a client that counts writes, Eventually, a namespace per test and
// the envtest-per-package TestMain. It imports no controller, so a
// controller's in-package tests use it without an import cycle;
// test/harness builds on it to run every controller.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/scheme"
)

// OperatorNamespace is the operator namespace of managers started here.
const OperatorNamespace = "meshplane-system"

// Setup adds one controller to a manager (a controller package's Setup).
type Setup func(*manager.Manager) error

// ManagerOptions tune StartManager.
type ManagerOptions struct {
	// Options are the manager's; zero fields get test defaults (no
	// metrics or probe listeners, OperatorNamespace, an hour's resync).
	Options manager.Options
	// QPS and Burst of the manager's client; client-go's defaults when 0.
	QPS   float32
	Burst int
	// Before runs on the built manager before the controllers are set up
	// (a test clock, a stub engine).
	Before func(*manager.Manager) error
}

// Manager is a running manager.
type Manager struct {
	*manager.Manager
	// Client is an uncached client for assertions.
	Client client.Client
}

// StartManager builds a manager with the given controllers, creates the
// operator namespace and runs it until the test ends.
func StartManager(t testing.TB, cfg *rest.Config, o ManagerOptions, setups ...Setup) *Manager {
	t.Helper()
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(logLevel())))
	if _, set := os.LookupEnv("MESHPLANE_CACHE_DIR"); !set {
		// A package whose tests run in parallel sets it once in TestMain
		// (t.Setenv panics in a parallel test).
		t.Setenv("MESHPLANE_CACHE_DIR", t.TempDir())
	}
	opts := o.Options
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "0"
	}
	if opts.ProbeAddr == "" {
		opts.ProbeAddr = "0"
	}
	if opts.OperatorNamespace == "" {
		opts.OperatorNamespace = OperatorNamespace
	}
	if opts.SyncPeriod == 0 {
		opts.SyncPeriod = time.Hour
	}
	opts.SkipControllerNameValidation = true
	mcfg := rest.CopyConfig(cfg)
	if o.QPS > 0 {
		mcfg.QPS, mcfg.Burst = o.QPS, o.Burst
	}
	mgr, err := manager.New(mcfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if o.Before != nil {
		if err := o.Before(mgr); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range setups {
		if err := s(mgr); err != nil {
			t.Fatal(err)
		}
	}
	c := NewClient(t, cfg)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opts.OperatorNamespace}}
	if err := c.Create(context.Background(), ns); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Logf("manager stopped: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Log("manager did not stop within 30s")
		}
	})
	return &Manager{Manager: mgr, Client: c}
}

// NewClient returns an uncached client with Meshplane's scheme.
func NewClient(t testing.TB, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func logLevel() zapcore.Level {
	if os.Getenv("MESHPLANE_TEST_DEBUG") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.WarnLevel
}

// DefaultTimeout is Eventually's timeout in controller tests.
const DefaultTimeout = 30 * time.Second

// Eventually polls check every 100ms until it returns nil or timeout
// passes, then fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		last := check()
		if last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Errorf is fmt.Errorf, for checks.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Namespace creates a namespace with a unique name derived from the test's
// (so `-run TestX/sub` runs alone and tests never share objects) and the
// given labels, and returns its name.
func Namespace(t testing.TB, c client.Client, labels map[string]string) string {
	t.Helper()
	base := strings.ToLower(t.Name())
	base = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, base)
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	name := strings.Trim(base, "-") + "-" + rand.String(5)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

// Writes counts the write requests a client sent.
type Writes struct {
	n   atomic.Int32
	mu  sync.Mutex
	log []string
}

// Count returns the number of writes so far.
func (w *Writes) Count() int { return int(w.n.Load()) }

// Log returns what was written ("patch VirtualService shop/web").
func (w *Writes) Log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log...)
}

// Reset forgets the writes so far.
func (w *Writes) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n.Store(0)
	w.log = nil
}

func (w *Writes) add(verb string, o any) {
	w.n.Add(1)
	what := verb
	if obj, ok := o.(client.Object); ok {
		kind := fmt.Sprintf("%T", obj)
		if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
			kind = gvk.Kind
		}
		what = fmt.Sprintf("%s %s %s/%s", verb, kind, obj.GetNamespace(), obj.GetName())
	}
	w.mu.Lock()
	w.log = append(w.log, what)
	w.mu.Unlock()
}

// CountWrites wraps c so that every write request — create, update, patch,
// server-side apply, delete, delete-all-of and subresource create, update
// or patch — is counted. Reads go to c unchanged.
func CountWrites(c client.WithWatch) (client.WithWatch, *Writes) {
	w := &Writes{}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			w.add("create", o)
			return c.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			w.add("update", o)
			return c.Update(ctx, o, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
			w.add("patch", o)
			return c.Patch(ctx, o, p, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			w.add("apply", o)
			return c.Apply(ctx, o, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			w.add("delete", o)
			return c.Delete(ctx, o, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteAllOfOption) error {
			w.add("deletecollection", o)
			return c.DeleteAllOf(ctx, o, opts...)
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, o, s client.Object, opts ...client.SubResourceCreateOption) error {
			w.add(sub+" create", o)
			return c.SubResource(sub).Create(ctx, o, s, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, o client.Object, opts ...client.SubResourceUpdateOption) error {
			w.add(sub+" update", o)
			return c.SubResource(sub).Update(ctx, o, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			w.add(sub+" patch", o)
			return c.SubResource(sub).Patch(ctx, o, p, opts...)
		},
	}), w
}

// CachedClient returns the manager's kind of client — reads from its cache,
// writes to the API server — wrapped by CountWrites, for zero-writes-on-a-
// no-op assertions: a reconciler built on it behaves as the manager's.
func CachedClient(t testing.TB, m *manager.Manager) (client.Client, *Writes) {
	t.Helper()
	wc, err := client.NewWithWatch(m.GetConfig(), client.Options{Scheme: m.GetScheme(), Cache: &client.CacheOptions{Reader: m.GetCache()}})
	if err != nil {
		t.Fatal(err)
	}
	c, w := CountWrites(wc)
	return c, w
}
