package manager_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestLeaderElectionTimings checks that the lease timings from the
// --leader-elect-* flags reach the lease the manager holds.
func TestLeaderElectionTimings(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	o := &manager.Options{MetricsAddr: "0", ProbeAddr: "0", SyncPeriod: time.Hour, LeaderElect: true,
		LeaderElectionNamespace: testenv.OperatorNamespace,
		LeaseDuration:           7 * time.Second, RenewDeadline: 5 * time.Second, RetryPeriod: time.Second}
	m := startManager(t, o, false)
	key := client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: manager.LeaderElectionID}
	testenv.Eventually(t, testenv.DefaultTimeout, "the lease", func() error {
		var l coordinationv1.Lease
		if err := m.Client.Get(context.Background(), key, &l); err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return fmt.Errorf("lease not held yet")
		}
		if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 7 {
			return fmt.Errorf("leaseDurationSeconds = %v, want 7", l.Spec.LeaseDurationSeconds)
		}
		return nil
	})
}
