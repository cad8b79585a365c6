package manager_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestRateLimiterWaitsAreMeasured checks that the manager's metrics report
// how long requests waited for a client-side rate limiter (the figure that
// proves nothing waits when none is configured): with a limiter of 2
// requests/s, waits are observed. Without setting client-go's adapter
// after every package's init, Cilium's adapter swallows them.
func TestRateLimiterWaitsAreMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	cfg := rest.CopyConfig(srv.Config)
	cfg.QPS, cfg.Burst = 2, 1
	o := manager.Options{MetricsAddr: testenv.FreeAddr(t), ProbeAddr: "0", SyncPeriod: time.Hour}
	testenv.StartManager(testenv.Strict(t), cfg, testenv.ManagerOptions{Options: o})
	count := regexp.MustCompile(`(?m)^rest_client_rate_limiter_duration_seconds_count\{[^}]*\} ([0-9.e+]+)$`)
	waitFor(t, "http://"+o.MetricsAddr+"/metrics", func(code int, body string) bool {
		if code != http.StatusOK {
			return false
		}
		for _, m := range count.FindAllStringSubmatch(body, -1) {
			if v, _ := strconv.ParseFloat(m[1], 64); v > 0 {
				return true
			}
		}
		return false
	})
}
