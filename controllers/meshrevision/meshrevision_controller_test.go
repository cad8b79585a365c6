package meshrevision_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/controllers/meshrevision"
	"github.com/meshplane/meshplane/internal/controlplane"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

var ctx = context.Background()

// env is the package's API server with the real Meshplane CRDs; Istio's
// come from its (fixture) base chart.
var env testenv.Package

func TestMain(m *testing.M) {
	testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
}

// startManager runs the MeshInstall and MeshRevision controllers, which
// share a Helm engine.
func startManager(t *testing.T, cfg *rest.Config) *testenv.Manager {
	t.Helper()
	return testenv.StartManager(t, cfg, testenv.ManagerOptions{}, func(m *manager.Manager) error {
		e, err := engine(m.GetConfig())
		if err != nil {
			return err
		}
		if err := meshinstall.Setup(m, e); err != nil {
			return err
		}
		return meshrevision.Setup(m, e)
	})
}

func engine(cfg *rest.Config) (*helm.Engine, error) {
	dir, err := os.MkdirTemp("", "meshrevision-helm")
	if err != nil {
		return nil, err
	}
	return helm.New(cfg, helm.Options{CacheDir: dir})
}

func cond(rv *meshv1alpha1.MeshRevision, typ string) *metav1.Condition {
	return apimeta.FindStatusCondition(rv.Status.Conditions, typ)
}

// waitRevision waits until check passes on the MeshRevision name.
func waitRevision(t *testing.T, c client.Client, name, what string, check func(*meshv1alpha1.MeshRevision) error) *meshv1alpha1.MeshRevision {
	t.Helper()
	var rv *meshv1alpha1.MeshRevision
	testenv.Eventually(t, 60*time.Second, name+" "+what, func() error {
		rv = &meshv1alpha1.MeshRevision{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, rv); err != nil {
			return err
		}
		return check(rv)
	})
	return rv
}

func readyAtGeneration(rv *meshv1alpha1.MeshRevision) error {
	r := cond(rv, meshv1alpha1.ReadyCondition)
	if r == nil || r.Status != metav1.ConditionTrue || rv.Status.ObservedGeneration != rv.Generation {
		return testenv.Errorf("generation %d, status %+v", rv.Generation, rv.Status)
	}
	return nil
}

func patchRevision(t *testing.T, c client.Client, name string, f func(*meshv1alpha1.MeshRevisionSpec)) {
	t.Helper()
	rv := &meshv1alpha1.MeshRevision{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, rv); err != nil {
		t.Fatal(err)
	}
	base := rv.DeepCopy()
	f(&rv.Spec)
	if err := c.Patch(ctx, rv, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

// TestMeshRevisionLifecycle installs Istio revision-based, stages a second
// revision with a tag, and follows it: Ready at its generation, the tag's
// webhook written through istio.EnsureTag, a no-op reconcile that writes
// nothing, a foreign tag webhook refused, tag removal, deletion held while
// a namespace uses the revision, and uninstall once none does.
func TestMeshRevisionLifecycle(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client
	ns := testenv.Namespace(t, c, nil)

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-revisions"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: ns,
			Chart:   &meshv1alpha1.ChartSource{Repository: repo.URL},
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased}},
	}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitRevision(t, c, "1-28-1", "created by the MeshInstall", func(rv *meshv1alpha1.MeshRevision) error {
		if !ownership.IsOwnedBy(rv, "MeshInstall", "", mi.Name) {
			return testenv.Errorf("labels %v", rv.Labels)
		}
		return nil
	})
	canary := &meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "canary"},
		Spec: meshv1alpha1.MeshRevisionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: mi.Name}, Version: "1.28.1", Tags: []string{"prod"}}}
	if err := c.Create(ctx, canary); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "istiod Deployments of both revisions", func() error {
		for _, name := range []string{"istiod-1-28-1", "istiod-canary"} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &appsv1.Deployment{}); err != nil {
				return err
			}
		}
		return nil
	})
	testenv.MarkAvailable(t, c, ns)
	// Ready comes first; the tag's use is seen once its webhook is in the
	// cache, a moment later.
	waitRevision(t, c, "canary", "Ready, in use through tag prod", func(rv *meshv1alpha1.MeshRevision) error {
		if err := readyAtGeneration(rv); err != nil {
			return err
		}
		if rv.Status.Phase != "InUse" || len(rv.Status.Tags) != 1 || rv.Status.Tags[0] != "prod" || len(rv.Status.Components) != 1 {
			return testenv.Errorf("status: %+v", rv.Status)
		}
		return nil
	})

	t.Run("the tag webhook is written by EnsureTag", func(t *testing.T) {
		var hook admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: istio.TagWebhookName("prod")}, &hook); err != nil {
			t.Fatal(err)
		}
		if hook.Labels[istio.RevLabel] != "canary" || hook.Labels[istio.TagLabel] != "prod" || !ownership.IsOwnedBy(&hook, "MeshRevision", "", "canary") {
			t.Fatalf("labels %v", hook.Labels)
		}
		if len(hook.OwnerReferences) != 0 || len(hook.Webhooks) != 2 {
			t.Fatalf("owner references %v (want none: Orphan keeps tags), %d webhooks (want 2)", hook.OwnerReferences, len(hook.Webhooks))
		}
		if !hasManager(hook.ManagedFields, ownership.FieldManager, metav1.ManagedFieldsOperationApply) {
			t.Fatalf("not server-side applied by %s: %+v", ownership.FieldManager, hook.ManagedFields)
		}
		// The MeshInstall moves its default tag with the same EnsureTag.
		testenv.Eventually(t, 30*time.Second, "default tag on 1-28-1", func() error {
			var def admissionregistrationv1.MutatingWebhookConfiguration
			if err := c.Get(ctx, client.ObjectKey{Name: istio.TagWebhookName("default")}, &def); err != nil {
				return err
			}
			if def.Labels[istio.RevLabel] != "1-28-1" || !ownership.IsOwnedBy(&def, "MeshInstall", "", mi.Name) || len(def.Webhooks) != 4 {
				return testenv.Errorf("labels %v, %d webhooks", def.Labels, len(def.Webhooks))
			}
			return nil
		})
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		wc, writes := testenv.CachedClient(t, m.Manager)
		hcfg, helmWrites, _ := testenv.CountRequests(m.GetConfig())
		e, err := engine(hcfg)
		if err != nil {
			t.Fatal(err)
		}
		r := &meshrevision.Reconciler{Deps: controlplane.Deps{Client: wc, APIReader: m.GetAPIReader(), Registry: m.Registry, Helm: e,
			Events: events.NewFakeRecorder(100), Clock: clock.RealClock{}, OperatorNamespace: testenv.OperatorNamespace}}
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "canary"}}); err != nil {
				t.Fatal(err)
			}
		}
		if writes.Count() != 0 || helmWrites.Count() != 0 {
			t.Fatalf("no-op reconciles sent %d writes (%v) and %d Helm writes (%v), want 0", writes.Count(), writes.Log(), helmWrites.Count(), helmWrites.Log())
		}
	})

	t.Run("a foreign tag webhook is a Conflict", func(t *testing.T) {
		foreign := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: istio.TagWebhookName("theirs"),
			Labels: map[string]string{istio.TagLabel: "theirs"}}}
		if err := c.Create(ctx, foreign); err != nil {
			t.Fatal(err)
		}
		patchRevision(t, c, "canary", func(s *meshv1alpha1.MeshRevisionSpec) { s.Tags = []string{"prod", "theirs"} })
		got := waitRevision(t, c, "canary", "Stalled Conflict", func(rv *meshv1alpha1.MeshRevision) error {
			if s := cond(rv, meshv1alpha1.StalledCondition); s == nil || s.Reason != meshv1alpha1.ConflictReason || rv.Status.ObservedGeneration != rv.Generation {
				return testenv.Errorf("conditions %+v", rv.Status.Conditions)
			}
			return nil
		})
		if msg := cond(got, meshv1alpha1.StalledCondition).Message; !strings.Contains(msg, istio.TagWebhookName("theirs")) {
			t.Fatalf("message should name the webhook: %s", msg)
		}
		var hook admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), &hook); err != nil || len(hook.Webhooks) != 0 || hook.Labels[istio.RevLabel] != "" {
			t.Fatalf("the foreign webhook was modified: %+v (%v)", hook, err)
		}
		if err := c.Delete(ctx, foreign); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a tag removed from spec.tags loses its webhook", func(t *testing.T) {
		patchRevision(t, c, "canary", func(s *meshv1alpha1.MeshRevisionSpec) { s.Tags = nil })
		testenv.Eventually(t, 30*time.Second, "prod tag webhook pruned", func() error {
			err := c.Get(ctx, client.ObjectKey{Name: istio.TagWebhookName("prod")}, &admissionregistrationv1.MutatingWebhookConfiguration{})
			if !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
		waitRevision(t, c, "canary", "Ready, unused", func(rv *meshv1alpha1.MeshRevision) error {
			if err := readyAtGeneration(rv); err != nil {
				return err
			}
			if !rv.Status.Deletable || rv.Status.UnusedSince == nil || rv.Status.Phase != "Ready" {
				return testenv.Errorf("usage: %+v", rv.Status)
			}
			return nil
		})
	})

	t.Run("deletion waits for the namespaces that use the revision", func(t *testing.T) {
		user := testenv.Namespace(t, c, map[string]string{istio.RevLabel: "canary"})
		if err := c.Delete(ctx, &meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "canary"}}); err != nil {
			t.Fatal(err)
		}
		got := waitRevision(t, c, "canary", "Draining", func(rv *meshv1alpha1.MeshRevision) error {
			r := cond(rv, meshv1alpha1.ReconcilingCondition)
			if rv.Status.Phase != "Draining" || r == nil || r.Reason != meshv1alpha1.DeletingReason {
				return testenv.Errorf("status %+v", rv.Status)
			}
			return nil
		})
		if !strings.Contains(cond(got, meshv1alpha1.ReconcilingCondition).Message, user) {
			t.Fatalf("message should name the namespace %s: %s", user, cond(got, meshv1alpha1.ReconcilingCondition).Message)
		}
		if err := c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: user}}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, "MeshRevision canary gone", func() error {
			if err := c.Get(ctx, client.ObjectKey{Name: "canary"}, &meshv1alpha1.MeshRevision{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
		h, err := engine(m.GetConfig())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Get(ctx, "istiod-canary", ns); !errors.Is(err, helm.ErrReleaseNotFound) {
			t.Fatalf("istiod-canary release: %v, want uninstalled", err)
		}
		if _, err := h.Get(ctx, "istiod-1-28-1", ns); err != nil {
			t.Fatalf("the MeshInstall's revision was touched: %v", err)
		}
	})
}

func hasManager(fields []metav1.ManagedFieldsEntry, manager string, op metav1.ManagedFieldsOperationType) bool {
	for _, f := range fields {
		if f.Manager == manager && f.Operation == op {
			return true
		}
	}
	return false
}
