package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// The collector lists every kind from the manager's cache at scrape time.
//
// +kubebuilder:rbac:groups=meshplane.io,resources=meshinstalls;meshrevisions;trafficsplits;zerotrustpolicies;canaries;meshfederations;breakglasses,verbs=get;list;watch

// CollectTimeout bounds the cache reads of one scrape.
const CollectTimeout = 5 * time.Second

var (
	meshesDesc = prometheus.NewDesc("meshplane_meshes",
		"MeshInstalls by provider, desired version, installed version and Ready status.",
		[]string{"provider", "version", "installed_version", "ready"}, nil)
	upgradeMigratedDesc = prometheus.NewDesc("meshplane_upgrade_migrated_namespaces",
		"Namespaces moved to the target revision by the running upgrade of a MeshInstall.",
		[]string{"meshinstall", "from_version", "to_version", "phase"}, nil)
	upgradeTotalDesc = prometheus.NewDesc("meshplane_upgrade_total_namespaces",
		"Namespaces the running upgrade of a MeshInstall has to move.",
		[]string{"meshinstall", "from_version", "to_version", "phase"}, nil)
	revisionNamespacesDesc = prometheus.NewDesc("meshplane_revision_namespaces",
		"Namespaces that use a MeshRevision.", []string{"meshrevision", "meshinstall", "version", "phase"}, nil)
	revisionPodsDesc = prometheus.NewDesc("meshplane_revision_pods",
		"Pods that use a MeshRevision.", []string{"meshrevision", "meshinstall", "version", "phase"}, nil)
	certExpiryDesc = prometheus.NewDesc("meshplane_federation_certificate_expiry_timestamp_seconds",
		"Expiry (notAfter, Unix seconds) of a MeshFederation's root CA (cluster=\"\") or a member cluster's intermediate.",
		[]string{"meshfederation", "cluster", "certificate"}, nil)
	breakGlassActiveDesc = prometheus.NewDesc("meshplane_breakglasses_active",
		"BreakGlasses not yet restored (the mesh is disabled where they apply).", nil, nil)
	breakGlassNamespacesDesc = prometheus.NewDesc("meshplane_breakglass_namespaces",
		"Namespaces a BreakGlass detached, by phase.", []string{"breakglass", "phase"}, nil)
	canaryWeightDesc = prometheus.NewDesc("meshplane_canary_weight",
		"Traffic percentage on a Canary's canary.", []string{"namespace", "canary"}, nil)
	canaryPhaseDesc = prometheus.NewDesc("meshplane_canary_phase",
		"A Canary's phase: 1 for the current phase, 0 for the others.", []string{"namespace", "canary", "phase"}, nil)
	objectsReadyDesc = prometheus.NewDesc("meshplane_objects",
		"Meshplane objects by kind and Ready status.", []string{"kind", "ready"}, nil)

	// CollectErrors counts cache reads that failed during a scrape; the
	// kind's metrics are left out of that scrape.
	CollectErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshplane_metrics_collect_errors_total",
		Help: "Cache reads of the metrics collector that failed, by kind.",
	}, []string{"kind"})
)

// CanaryPhases are the phases meshplane_canary_phase reports.
var CanaryPhases = []meshv1alpha1.CanaryPhase{
	meshv1alpha1.CanaryPhaseInitializing, meshv1alpha1.CanaryPhaseInitialized, meshv1alpha1.CanaryPhaseWaiting,
	meshv1alpha1.CanaryPhaseProgressing, meshv1alpha1.CanaryPhaseWaitingPromotion, meshv1alpha1.CanaryPhasePromoting,
	meshv1alpha1.CanaryPhaseFinalising, meshv1alpha1.CanaryPhaseSucceeded, meshv1alpha1.CanaryPhaseFailed, meshv1alpha1.CanaryPhaseTerminating,
}

// Collector reports Meshplane's objects from a cache at scrape time. It
// reads what the controllers wrote in status and changes nothing, so no
// controller has to update a metric.
type Collector struct {
	reader atomic.Pointer[client.Reader]
}

var (
	collector     = &Collector{}
	registerOnce  sync.Once
	errRegistered error
)

// UseReader points the collector registered in controller-runtime's
// registry at r (the manager's cache) and registers it on first use.
func UseReader(r client.Reader) error {
	registerOnce.Do(func() {
		errRegistered = ctrlmetrics.Registry.Register(collector)
		if errRegistered == nil {
			errRegistered = ctrlmetrics.Registry.Register(CollectErrors)
		}
		// Every kind's error series exists from the start, at zero.
		for _, k := range []string{"MeshInstall", "MeshRevision", "TrafficSplit", "ZeroTrustPolicy", "Canary", "MeshFederation", "BreakGlass"} {
			CollectErrors.WithLabelValues(k)
		}
	})
	collector.SetReader(r)
	return errRegistered
}

// NewCollector returns a collector reading from r, for tests that register
// it in their own registry.
func NewCollector(r client.Reader) *Collector {
	c := &Collector{}
	c.SetReader(r)
	return c
}

// SetReader sets where the collector reads from.
func (c *Collector) SetReader(r client.Reader) { c.reader.Store(&r) }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{meshesDesc, upgradeMigratedDesc, upgradeTotalDesc, revisionNamespacesDesc, revisionPodsDesc,
		certExpiryDesc, breakGlassActiveDesc, breakGlassNamespacesDesc, canaryWeightDesc, canaryPhaseDesc, objectsReadyDesc} {
		ch <- d
	}
}

func readyOf(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, meshv1alpha1.ReadyCondition); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	rp := c.reader.Load()
	if rp == nil || *rp == nil {
		return
	}
	r := *rp
	ctx, cancel := context.WithTimeout(context.Background(), CollectTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ready := map[[2]string]float64{}
	list := func(kind string, l client.ObjectList) bool {
		if err := r.List(ctx, l); err != nil {
			CollectErrors.WithLabelValues(kind).Inc()
			return false
		}
		return true
	}

	var mis meshv1alpha1.MeshInstallList
	if list("MeshInstall", &mis) {
		meshes := map[[4]string]float64{}
		for _, m := range mis.Items {
			rd := readyOf(m.Status.Conditions)
			ready[[2]string{"MeshInstall", rd}]++
			meshes[[4]string{string(m.Spec.Provider), m.Spec.Version, m.Status.InstalledVersion, rd}]++
			if up := m.Status.Upgrade; up != nil && up.Phase != "" && up.Phase != "Completed" {
				gauge(upgradeMigratedDesc, float64(up.MigratedNamespaces), m.Name, up.FromVersion, up.ToVersion, string(up.Phase))
				gauge(upgradeTotalDesc, float64(up.TotalNamespaces), m.Name, up.FromVersion, up.ToVersion, string(up.Phase))
			}
		}
		for k, v := range meshes {
			gauge(meshesDesc, v, k[0], k[1], k[2], k[3])
		}
	}
	var revs meshv1alpha1.MeshRevisionList
	if list("MeshRevision", &revs) {
		for _, rv := range revs.Items {
			ready[[2]string{"MeshRevision", readyOf(rv.Status.Conditions)}]++
			gauge(revisionNamespacesDesc, float64(rv.Status.NamespaceCount), rv.Name, rv.Spec.MeshInstallRef.Name, rv.Spec.Version, string(rv.Status.Phase))
			gauge(revisionPodsDesc, float64(rv.Status.PodCount), rv.Name, rv.Spec.MeshInstallRef.Name, rv.Spec.Version, string(rv.Status.Phase))
		}
	}
	var tss meshv1alpha1.TrafficSplitList
	if list("TrafficSplit", &tss) {
		for _, o := range tss.Items {
			ready[[2]string{"TrafficSplit", readyOf(o.Status.Conditions)}]++
		}
	}
	var ztps meshv1alpha1.ZeroTrustPolicyList
	if list("ZeroTrustPolicy", &ztps) {
		for _, o := range ztps.Items {
			ready[[2]string{"ZeroTrustPolicy", readyOf(o.Status.Conditions)}]++
		}
	}
	var cans meshv1alpha1.CanaryList
	if list("Canary", &cans) {
		for _, o := range cans.Items {
			ready[[2]string{"Canary", readyOf(o.Status.Conditions)}]++
			gauge(canaryWeightDesc, float64(o.Status.CanaryWeight), o.Namespace, o.Name)
			for _, p := range CanaryPhases {
				v := 0.0
				if o.Status.Phase == p {
					v = 1
				}
				gauge(canaryPhaseDesc, v, o.Namespace, o.Name, string(p))
			}
		}
	}
	var feds meshv1alpha1.MeshFederationList
	if list("MeshFederation", &feds) {
		for _, f := range feds.Items {
			ready[[2]string{"MeshFederation", readyOf(f.Status.Conditions)}]++
			if f.Status.Root != nil && f.Status.Root.NotAfter != nil {
				gauge(certExpiryDesc, float64(f.Status.Root.NotAfter.Unix()), f.Name, "", "root")
			}
			for _, m := range f.Status.Clusters {
				if m.Intermediate != nil && m.Intermediate.NotAfter != nil {
					gauge(certExpiryDesc, float64(m.Intermediate.NotAfter.Unix()), f.Name, m.Name, "intermediate")
				}
			}
		}
	}
	var bgs meshv1alpha1.BreakGlassList
	if list("BreakGlass", &bgs) {
		active := 0.0
		for _, b := range bgs.Items {
			ready[[2]string{"BreakGlass", readyOf(b.Status.Conditions)}]++
			if b.DeletionTimestamp == nil && b.Status.Phase != meshv1alpha1.BreakGlassRestored {
				active++
			}
			gauge(breakGlassNamespacesDesc, float64(b.Status.Touched.Namespaces), b.Name, string(b.Status.Phase))
		}
		gauge(breakGlassActiveDesc, active)
	}
	for k, v := range ready {
		gauge(objectsReadyDesc, v, k[0], k[1])
	}
}
