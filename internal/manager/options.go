// Package manager builds Meshplane's controller-runtime manager from
// command-line options: scheme, cache scope, metrics, health and readiness
// probes, leader election and the provider registry. cmd/manager only parses
// flags and calls it, so tests and the demo start the same manager.
package manager

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Options are the manager's settings.
type Options struct {
	// MetricsAddr is the address of the Prometheus metrics endpoint; "0"
	// disables it.
	MetricsAddr string
	// SecureMetrics serves the metrics endpoint over HTTPS and lets only
	// callers through whose token the API server authenticates
	// (TokenReview) and authorizes for GET on the /metrics non-resource URL
	// (SubjectAccessReview). False serves plain HTTP without authentication
	// (the zero value, for tests; the --metrics-secure flag defaults to true).
	SecureMetrics bool
	// MetricsCertDir holds tls.crt and tls.key of the secure metrics
	// endpoint (reloaded when they change); a self-signed certificate when
	// empty.
	MetricsCertDir string
	// ProbeAddr is the address of /healthz and /readyz.
	ProbeAddr string
	// LeaderElect enables leader election so replicas can run side by side.
	LeaderElect bool
	// LeaderElectionNamespace holds the lease; the in-cluster namespace
	// when empty.
	LeaderElectionNamespace string
	// LeaseDuration is how long a standby waits after the leader's last
	// renewal before taking the lease.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leadership; controller-runtime then stops the manager (the
	// process exits and its Deployment restarts it).
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to take or renew the
	// lease.
	RetryPeriod time.Duration
	// WatchNamespaces limits namespaced kinds to these namespaces; all when
	// empty.
	WatchNamespaces []string
	// OperatorNamespace is where Meshplane keeps its own Secrets (generated
	// CAs, kubeconfigs).
	OperatorNamespace string
	// SyncPeriod is the cache's full resync period.
	SyncPeriod time.Duration
	// MetricsServer is the Prometheus-compatible API a Canary's analysis
	// queries when it names none; none when empty.
	MetricsServer string
	// Concurrent is MaxConcurrentReconciles per controller (lower-case
	// kind); DefaultConcurrency for a controller it does not name.
	Concurrent map[string]int
	// PprofAddr serves Go's /debug/pprof handlers (heap, CPU profiles) on
	// this address; off when empty or "0".
	PprofAddr string
	// SkipControllerNameValidation lets several managers register the same
	// controllers in one process (tests); never set by flags.
	SkipControllerNameValidation bool
}

// BindFlags registers the options on fs with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", `Address of the Prometheus metrics endpoint ("0" disables it).`)
	fs.BoolVar(&o.SecureMetrics, "metrics-secure", true, "Serve metrics over HTTPS to callers the API server authenticates and authorizes (GET on /metrics, e.g. the metrics-reader ClusterRole). --metrics-secure=false serves plain HTTP to anyone who can reach the port.")
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", "", "Directory with tls.crt and tls.key for the secure metrics endpoint (a self-signed certificate when empty).")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz probes.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Enable leader election, so several replicas can run with one active.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election lease (the pod's namespace when empty).")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", DefaultLeaseDuration, "How long a standby waits after the leader's last renewal before taking the lease.")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", DefaultRenewDeadline, "How long the leader retries renewing the lease before giving up leadership; the manager then exits (restarted by its Deployment). Shorter than the lease duration.")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", DefaultRetryPeriod, "Interval between attempts to take or renew the lease. Shorter than the renew deadline.")
	fs.Func("watch-namespaces", "Comma-separated namespaces to watch for namespaced kinds (all when empty).", func(s string) error {
		o.WatchNamespaces = nil
		for _, n := range strings.Split(s, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.WatchNamespaces = append(o.WatchNamespaces, n)
			}
		}
		return nil
	})
	fs.StringVar(&o.OperatorNamespace, "operator-namespace", "meshplane-system", "Namespace where Meshplane keeps its own Secrets.")
	fs.DurationVar(&o.SyncPeriod, "sync-period", 10*time.Hour, "Full resync period of the informer cache.")
	fs.Func("concurrent", "Concurrent reconciles: a number for every controller, or controller=number pairs (e.g. trafficsplit=8,canary=16). Defaults: "+defaultsText()+".", o.parseConcurrent)
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", `Address of Go's /debug/pprof handlers, for profiling (off when empty or "0"; never expose it outside the pod).`)
	fs.StringVar(&o.MetricsServer, "metrics-server", "", "Prometheus-compatible API (http(s)://host:port) Canary analyses query when they name no metricsServer.")
}

func defaultsText() string {
	parts := make([]string, 0, len(DefaultConcurrency))
	for _, n := range controllerNames() {
		parts = append(parts, fmt.Sprintf("%s=%d", n, DefaultConcurrency[n]))
	}
	return strings.Join(parts, ",")
}

// The leader-election defaults are controller-runtime's (and client-go's):
// a leader that cannot renew for 10s gives up; a standby takes over 15s
// after the last renewal.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// DefaultConcurrency is each controller's MaxConcurrentReconciles unless
// --concurrent says otherwise. Reconciles are latency-bound (a few reads,
// one apply, one status patch): workers overlap the round trips. With 4
// TrafficSplit workers, 100 weight changes/s queued up to a p99 of 1.7–7 s
// (make bench, loaded machine); 16 gave 0.73–2.0 s in the same runs, for
// a few goroutines more.
// A Canary's reconcile mostly waits on its metrics server and webhooks,
// once per interval for every Canary: 8 workers stretched the analysis
// period of 100 Canaries with a 1 s interval to 4-5 s.
var DefaultConcurrency = map[string]int{
	"meshinstall": 2, "meshrevision": 1, "meshfederation": 1, "breakglass": 1,
	"trafficsplit": 16, "zerotrustpolicy": 16, "canary": 32,
}

// ConcurrencyOf returns MaxConcurrentReconciles for the named controller.
func (o *Options) ConcurrencyOf(name string) int {
	if n, ok := o.Concurrent[name]; ok && n > 0 {
		return n
	}
	if n, ok := DefaultConcurrency[name]; ok {
		return n
	}
	return 1
}

// parseConcurrent reads --concurrent: "8" for every controller, or
// "trafficsplit=8,canary=16" per controller (the two may be mixed; a bare
// number sets the ones not named).
func (o *Options) parseConcurrent(s string) error {
	out := map[string]int{}
	all := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, named := strings.Cut(part, "=")
		if !named {
			name, val = "", part
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 1 || n > 256 {
			return fmt.Errorf("%q: want a number of workers from 1 to 256, e.g. 8 or trafficsplit=8,canary=16", part)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if !named {
			all = n
			continue
		}
		if _, ok := DefaultConcurrency[name]; !ok {
			return fmt.Errorf("%q: no controller %q; controllers are %s", part, name, strings.Join(controllerNames(), ", "))
		}
		out[name] = n
	}
	if all > 0 {
		for name := range DefaultConcurrency {
			if _, ok := out[name]; !ok {
				out[name] = all
			}
		}
	}
	o.Concurrent = out
	return nil
}

func controllerNames() []string {
	names := make([]string, 0, len(DefaultConcurrency))
	for n := range DefaultConcurrency {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Validate checks the options and says what is wrong.
func (o *Options) Validate() error {
	var errs []error
	for _, n := range append([]string{o.OperatorNamespace}, o.WatchNamespaces...) {
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("namespace %q is not valid: %s", n, strings.Join(msgs, "; ")))
		}
	}
	if o.SyncPeriod < time.Minute {
		errs = append(errs, fmt.Errorf("--sync-period %s is too short (at least 1m)", o.SyncPeriod))
	}
	errs = append(errs, o.validateLeaderElection()...)
	if o.MetricsServer != "" && !strings.HasPrefix(o.MetricsServer, "http://") && !strings.HasPrefix(o.MetricsServer, "https://") {
		errs = append(errs, fmt.Errorf("--metrics-server %q must be an http:// or https:// address", o.MetricsServer))
	}
	return errors.Join(errs...)
}

// validateLeaderElection checks the lease timings as client-go's leader
// elector does (it panics on them otherwise): retry period < renew deadline
// < lease duration. Zero values take the defaults.
func (o *Options) validateLeaderElection() []error {
	lease, renew, retry := o.leaseTimings()
	var errs []error
	if retry < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--leader-elect-retry-period %s is too short (at least 100ms)", retry))
	}
	if renew <= retry {
		errs = append(errs, fmt.Errorf("--leader-elect-renew-deadline %s must be longer than --leader-elect-retry-period %s", renew, retry))
	}
	if lease <= renew {
		errs = append(errs, fmt.Errorf("--leader-elect-lease-duration %s must be longer than --leader-elect-renew-deadline %s", lease, renew))
	}
	return errs
}

// leaseTimings returns lease duration, renew deadline and retry period,
// with the defaults for zero values.
func (o *Options) leaseTimings() (lease, renew, retry time.Duration) {
	lease, renew, retry = o.LeaseDuration, o.RenewDeadline, o.RetryPeriod
	if lease == 0 {
		lease = DefaultLeaseDuration
	}
	if renew == 0 {
		renew = DefaultRenewDeadline
	}
	if retry == 0 {
		retry = DefaultRetryPeriod
	}
	return lease, renew, retry
}
