// Package harness runs Meshplane's manager, with every controller from
// controllers/setup, against a test cluster, and offers the polling helpers
// the controller and end-to-end tests share.
package harness

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshplane/meshplane/controllers/setup"
	"github.com/meshplane/meshplane/internal/manager"
)

// OperatorNamespace is the operator namespace of managers started here.
const OperatorNamespace = "meshplane-system"

// Manager is a running manager.
type Manager struct {
	*manager.Manager
	// Client is an uncached client for assertions.
	Client client.Client
}

// StartManager builds the manager with every controller, creates the
// operator namespace and runs it until the test ends.
func StartManager(t testing.TB, cfg *rest.Config) *Manager {
	t.Helper()
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapLevel())))
	t.Setenv("MESHPLANE_CACHE_DIR", t.TempDir())
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", OperatorNamespace: OperatorNamespace, SyncPeriod: 10 * time.Minute,
		SkipControllerNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.All(mgr); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}
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

func zapLevel() zapLevelT {
	if os.Getenv("MESHPLANE_TEST_DEBUG") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.WarnLevel
}

// Eventually polls check every interval until it returns nil or timeout
// passes, then fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
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
