package status_test

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

var env testenv.Package

func TestMain(m *testing.M) {
	testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
}

// TestStaleObjectDoesNotOverwriteNewerStatus: a reconcile that read an
// older object (a lagging cache) and patches its status is refused with
// Conflict, the newer status stays, and Finish asks for a requeue; a
// Patcher on the current object patches twice in a row (record first, act
// second, then Finish).
func TestStaleObjectDoesNotOverwriteNewerStatus(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClient(t, env.Cfg(t))
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "stale-status"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Suspend: true}}
	testenv.Must(t, c.Create(ctx, mi))
	t.Cleanup(func() { _ = c.Delete(ctx, mi) })
	key := client.ObjectKeyFromObject(mi)

	stale := &meshv1alpha1.MeshInstall{}
	p, err := status.Begin(ctx, c, c, key, stale)
	if p == nil {
		t.Fatal(err)
	}
	// Another reconcile records newer progress first.
	fresh := &meshv1alpha1.MeshInstall{}
	pf, err := status.Begin(ctx, c, c, key, fresh)
	if pf == nil {
		t.Fatal(err)
	}
	fresh.Status.Upgrade = &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeMigrating, CurrentBatch: []string{"a", "b", "c"}}
	testenv.Must(t, pf.Patch(ctx, fresh))
	// Record first, act second: the same Patcher patches again, and a
	// Commit of the current object succeeds without changes.
	fresh.Status.Upgrade.Message = "batch [a b c] restarting"
	testenv.Must(t, pf.Patch(ctx, fresh))
	testenv.Must(t, pf.Commit(ctx, fresh))

	// Commit asserts freshness even when nothing changed.
	if err := p.Commit(ctx, stale.DeepCopy()); !apierrors.IsConflict(err) {
		t.Fatalf("stale Commit without changes: %v, want Conflict", err)
	}
	stale.Status.Upgrade = &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeMigrating, CurrentBatch: []string{"d", "e", "f"}}
	if err := p.Patch(ctx, stale); !apierrors.IsConflict(err) {
		t.Fatalf("stale status patch: %v, want Conflict", err)
	}
	res, err := status.Finish(ctx, p, stale, status.Summary{}, nil, meshv1alpha1.ProgressingReason)
	if err != nil || res.RequeueAfter != time.Second {
		t.Fatalf("Finish of a stale reconcile = %+v, %v; want a requeue after 1s", res, err)
	}
	// A stale metadata-only change is refused too.
	stale2 := &meshv1alpha1.MeshInstall{}
	p2, _ := status.Begin(ctx, c, c, key, stale2)
	testenv.Must(t, pf.Patch(ctx, withLabel(fresh, "x", "1")))
	if err := p2.Patch(ctx, withLabel(stale2, "y", "1")); !apierrors.IsConflict(err) {
		t.Fatalf("stale metadata patch: %v, want Conflict", err)
	}

	got := &meshv1alpha1.MeshInstall{}
	testenv.Must(t, c.Get(ctx, key, got))
	if u := got.Status.Upgrade; u == nil || len(u.CurrentBatch) != 3 || u.CurrentBatch[0] != "a" || u.Message != "batch [a b c] restarting" {
		t.Fatalf("status after the stale write: %+v, want batch [a b c] kept", u)
	}
	if got.Labels["x"] != "1" || got.Labels["y"] != "" {
		t.Fatalf("labels after the stale write: %v", got.Labels)
	}
}

func withLabel(mi *meshv1alpha1.MeshInstall, k, v string) *meshv1alpha1.MeshInstall {
	if mi.Labels == nil {
		mi.Labels = map[string]string{}
	}
	mi.Labels[k] = v
	return mi
}
