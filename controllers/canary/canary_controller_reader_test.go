package canary

import (
	"context"
	"sync/atomic"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/test/testenv"
)

// canaryReads counts the uncached reads of Canaries.
type canaryReads struct {
	client.Reader
	n atomic.Int32
}

func (c *canaryReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*meshv1alpha1.Canary); ok {
		c.n.Add(1)
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestReconcileReadsCanaryFromCache: a reconcile reads its Canary from the
// cache while the cache holds the controller's last write, and from the
// API server when it does not (the engine never acts on a state older
// than the one it last wrote).
func TestReconcileReadsCanaryFromCache(t *testing.T) {
	mgr, c := start(t)
	ns := istioNamespace(t, c)
	key, cn := initialized(t, c, ns, 1)
	api := &canaryReads{Reader: mgr.GetAPIReader()}
	r := &Reconciler{Deps: outputs.NewDeps(mgr.GetClient(), mgr.Manager, "test"), APIReader: api,
		fresh: &freshReader{cache: mgr.GetClient(), api: api}}
	testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
		cur := &meshv1alpha1.Canary{}
		if err := mgr.GetClient().Get(ctx, key, cur); err != nil {
			return err
		}
		if cur.ResourceVersion != cn.ResourceVersion {
			return testenv.Errorf("cache at %s, API server at %s", cur.ResourceVersion, cn.ResourceVersion)
		}
		return nil
	})
	for range 3 {
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatal(err)
		}
	}
	if got := api.n.Load(); got != 0 {
		t.Fatalf("3 reconciles with the cache current read the Canary %d times from the API server, want 0", got)
	}
	// The cache lags a write of this controller: the API server is read.
	r.fresh.written.Store(key, "a-later-version")
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
		t.Fatal(err)
	}
	if got := api.n.Load(); got != 1 {
		t.Fatalf("a reconcile with the cache behind its last write read the Canary %d times from the API server, want 1", got)
	}
}
