package chart

import (
	"flag"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshplane/meshplane/internal/manager"
)

// TestLeaderElectionTimings renders leaderElection's lease timings into the
// manager's --leader-elect-* flags and checks the manager parses and
// accepts them.
func TestLeaderElectionTimings(t *testing.T) {
	for _, tc := range []struct {
		vals                map[string]any
		lease, renew, retry time.Duration
	}{
		{nil, 15 * time.Second, 10 * time.Second, 2 * time.Second},
		{map[string]any{"leaderElection": map[string]any{"leaseDuration": "1m", "renewDeadline": "40s", "retryPeriod": "5s"}},
			time.Minute, 40 * time.Second, 5 * time.Second},
	} {
		args := one[appsv1.Deployment](t, render(t, tc.vals, false), "Deployment").Spec.Template.Spec.Containers[0].Args
		var o manager.Options
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o.BindFlags(fs)
		(&zap.Options{}).BindFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("the manager does not parse %v: %v", args, err)
		}
		if err := o.Validate(); err != nil {
			t.Errorf("%v: %v", tc.vals, err)
		}
		if o.LeaseDuration != tc.lease || o.RenewDeadline != tc.renew || o.RetryPeriod != tc.retry {
			t.Errorf("%v: lease %s renew %s retry %s, want %s %s %s", tc.vals, o.LeaseDuration, o.RenewDeadline, o.RetryPeriod, tc.lease, tc.renew, tc.retry)
		}
	}
	if _, err := Render(map[string]any{"leaderElection": map[string]any{"leaseDuration": "15 seconds"}}, false); err == nil {
		t.Error("leaseDuration 15 seconds rendered")
	}
}
