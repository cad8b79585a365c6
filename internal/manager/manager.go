package manager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/scheme"
)

// LeaderElectionID is the name of the leader-election lease.
const LeaderElectionID = "meshplane.meshplane.io"

// Kinds are Meshplane's kinds; readiness requires the API server to serve
// every one of them.
var Kinds = []string{"MeshInstall", "MeshRevision", "TrafficSplit", "ZeroTrustPolicy", "Canary", "MeshFederation", "BreakGlass", "TelemetryPolicy", "MeshAdoption", "ResiliencePolicy", "EgressPolicy", "IngressGateway", "ProxyPolicy"}

// Manager is a controller-runtime manager plus what Meshplane's controllers
// share.
type Manager struct {
	ctrl.Manager
	// Registry resolves provider names (fails closed).
	Registry *mesh.Registry
	// Options the manager was built with.
	Options Options
	// Clock is the controllers' time; the real clock unless a test sets
	// another before the controllers are set up.
	Clock clock.WithTicker
}

// ControllerOptions returns the controller options of the named controller
// (its lower-case kind): MaxConcurrentReconciles from --concurrent.
func (m *Manager) ControllerOptions(name string) controller.Options {
	return controller.Options{MaxConcurrentReconciles: m.Options.ConcurrencyOf(name)}
}

// EventRecorder returns the one recorder of the named controller (its
// lower-case kind); Events read "meshplane-<name>" as their reporter.
func (m *Manager) EventRecorder(name string) events.EventRecorder {
	return m.GetEventRecorder("meshplane-" + name)
}

// New builds the manager: scheme with every API Meshplane reads or writes,
// cache scoped to the watched namespaces, metrics, probes and leader
// election.
func New(cfg *rest.Config, o Options) (*Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := scheme.New()
	// Managed fields are never read from the cache; dropping them saves
	// about a third of the memory of every cached object.
	cacheOpts := cache.Options{SyncPeriod: &o.SyncPeriod, DefaultTransform: cache.TransformStripManagedFields()}
	if len(o.WatchNamespaces) > 0 {
		cacheOpts.DefaultNamespaces = make(map[string]cache.Config, len(o.WatchNamespaces))
		for _, n := range o.WatchNamespaces {
			cacheOpts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	lease, renew, retry := o.leaseTimings()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  s,
		Cache:                   cacheOpts,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaseDuration:           &lease,
		RenewDeadline:           &renew,
		RetryPeriod:             &retry,
		// Release the lease on shutdown so a replica takes over at once.
		// Safe because Start returns only after every controller stopped.
		LeaderElectionReleaseOnCancel: true,
		// RecoverPanic (controller-runtime's default, stated here): a panic
		// in one object's reconcile is an error for that object, retried
		// with backoff, and never stops the other objects.
		// EnableWarmup: a standby starts every controller's watches (its
		// informers list and sync) while it waits for the lease, and only
		// its workers wait; a new leader then reconciles at once instead of
		// listing every watched kind first. Nothing is written before it
		// leads (make bench: the failover benchmark counts the standby's
		// writes).
		Controller: config.Controller{SkipNameValidation: &o.SkipControllerNameValidation, RecoverPanic: ptr.To(true), EnableWarmup: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("crds", CRDsServed(dc)); err != nil {
		return nil, err
	}
	reg := providers.Registry()
	names := make([]string, 0, len(reg.Names()))
	for _, n := range reg.Names() {
		names = append(names, string(n))
	}
	metrics.RecordBuild(names)
	// rest_client_rate_limiter_duration_seconds: how long requests waited
	// for client-go's client-side rate limiter (none is configured unless
	// the configuration sets a QPS; the metric shows that nothing waits).
	recordRateLimiterWaits()
	// Object metrics are read from the cache at scrape time.
	if err := metrics.UseReader(mgr.GetCache()); err != nil {
		return nil, fmt.Errorf("registering the metrics collector: %w", err)
	}
	return &Manager{Manager: mgr, Registry: reg, Options: o, Clock: clock.RealClock{}}, nil
}

// metricsOptions serves metrics over HTTPS behind Kubernetes authentication
// and authorization when o.SecureMetrics is set, as kubebuilder projects do,
// and over plain HTTP otherwise. HTTP/2 is off on the secure endpoint
// (CVE-2023-44487, CVE-2023-39325: rapid reset and stream cancellation).
func metricsOptions(o Options) metricsserver.Options {
	if !o.SecureMetrics {
		return metricsserver.Options{BindAddress: o.MetricsAddr}
	}
	return metricsserver.Options{
		BindAddress:    o.MetricsAddr,
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
		CertDir:        o.MetricsCertDir,
		TLSOpts:        []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
}

// CRDsServed returns a readiness check that passes when the API server
// serves every Meshplane kind, so a manager started before its CRDs are
// installed reports why it is not ready.
func CRDsServed(dc discovery.DiscoveryInterface) healthz.Checker {
	return func(*http.Request) error {
		list, err := dc.ServerResourcesForGroupVersion(meshv1alpha1.GroupVersion.String())
		if err != nil {
			return fmt.Errorf("API %s is not served (install Meshplane's CRDs: make install): %w", meshv1alpha1.GroupVersion, err)
		}
		served := map[string]bool{}
		for _, r := range list.APIResources {
			served[r.Kind] = true
		}
		for _, k := range Kinds {
			if !served[k] {
				return fmt.Errorf("kind %s of %s is not served (install Meshplane's CRDs: make install)", k, meshv1alpha1.GroupVersion)
			}
		}
		return nil
	}
}

// Start runs the manager until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	log := ctrl.Log.WithName("setup")
	log.Info("starting Meshplane", "providers", m.Registry.Names(), "watchNamespaces", m.Options.WatchNamespaces,
		"leaderElection", m.Options.LeaderElect)
	return m.Manager.Start(ctx)
}
