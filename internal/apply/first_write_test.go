package apply_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/testenv"
)

// applies records the applies a client sends, "dry <name>" or "<name>".
type applies struct {
	mu   sync.Mutex
	sent []string
}

func (a *applies) client(c client.WithWatch) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			o := &client.ApplyOptions{}
			o.ApplyOptions(opts)
			name := "?"
			if u, ok := obj.(interface{ GetName() string }); ok {
				name = u.GetName()
			}
			if len(o.DryRun) > 0 {
				name = "dry " + name
			}
			a.mu.Lock()
			a.sent = append(a.sent, name)
			a.mu.Unlock()
			return c.Apply(ctx, obj, opts...)
		},
	})
}

// TestFirstWriteIsItsOwnCheck: Apply dry-runs every write but the first,
// which it sends first; a refusal of any output — the first included —
// writes nothing and is terminal with reason OutputRejected. Prepare (for
// callers that act between it and Commit) still dry-runs every write.
func TestFirstWriteIsItsOwnCheck(t *testing.T) {
	ctx := context.Background()
	base, err := client.NewWithWatch(env.Cfg(t), client.Options{Scheme: scheme.New()})
	testenv.Must(t, err)
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "first-write"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Suspend: true}}
	testenv.Must(t, base.Create(ctx, mi))
	t.Cleanup(func() { _ = base.Delete(ctx, mi) })
	cm := func(name, key string) client.Object {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{key: "v"}}
	}
	owner := apply.Owner{Object: mi, Kind: "MeshInstall", Detached: true}
	exists := func(name string) bool {
		err := base.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &corev1.ConfigMap{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, tc := range []struct {
		name    string
		objs    []client.Object
		prepare bool // Prepare + Commit instead of Apply
		refused bool
		sent    []string
	}{
		{name: "two good outputs", objs: []client.Object{cm("fw-a", "k"), cm("fw-b", "k")}, sent: []string{"dry fw-b", "fw-a", "fw-b"}},
		{name: "one output: no dry run", objs: []client.Object{cm("fw-c", "k")}, sent: []string{"fw-c"}},
		{name: "first refused", objs: []client.Object{cm("fw-d", "bad key!"), cm("fw-e", "k")}, refused: true, sent: []string{"dry fw-e", "fw-d"}},
		{name: "second refused", objs: []client.Object{cm("fw-f", "k"), cm("fw-g", "bad key!")}, refused: true, sent: []string{"dry fw-g"}},
		{name: "Prepare dry-runs every write", objs: []client.Object{cm("fw-h", "k"), cm("fw-i", "k")}, prepare: true, sent: []string{"dry fw-h", "dry fw-i", "fw-h", "fw-i"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &applies{}
			a := &apply.Applier{Client: rec.client(base), Reader: base, Scheme: scheme.New(), APIReader: base}
			var res apply.Result
			var err error
			if tc.prepare {
				var plan *apply.Plan
				if plan, err = a.Prepare(ctx, owner, tc.objs, nil); err == nil {
					res, err = plan.Commit(ctx)
				}
			} else {
				res, err = a.Apply(ctx, owner, tc.objs, nil)
			}
			if !slices.Equal(rec.sent, tc.sent) {
				t.Errorf("applies sent %q, want %q", rec.sent, tc.sent)
			}
			for _, o := range tc.objs {
				if exists(o.GetName()) == tc.refused {
					t.Errorf("%s exists: %v, refused change: %v", o.GetName(), !tc.refused, tc.refused)
				}
			}
			if !tc.refused {
				testenv.Must(t, err)
				if len(res.Inventory) != len(tc.objs) {
					t.Errorf("inventory %v", res.Inventory)
				}
				return
			}
			if got := outcome.Reason(err, ""); got != meshv1alpha1.OutputRejectedReason || !outcome.IsTerminal(err) || len(res.Inventory) != 0 {
				t.Fatalf("refusal: reason %q, terminal %v, inventory %v: %v", got, outcome.IsTerminal(err), res.Inventory, err)
			}
			if want := `"bad key!"`; !strings.Contains(err.Error(), "ConfigMap") || !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not name the output and the value %s", err, want)
			}
		})
	}
}
