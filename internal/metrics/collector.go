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
	undecodableDesc = prometheus.NewDesc("meshplane_undecodable_objects",
		"Meshplane objects stored with fields that cannot be decoded (written before a validation rule existed); they are Stalled and not reconciled until fixed.",
		[]string{"kind"}, nil)

	// CollectErrors counts cache reads that failed during a scrape; the
	// kind's metrics are left out of that scrape.
	CollectErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshplane_metrics_collect_errors_total",
		Help: "Cache reads of the metrics collector that failed, by kind.",
	}, []string{"kind"})
)

// kinds are Meshplane's kinds, each with its series from the start.
var kinds = []string{"MeshInstall", "MeshRevision", "TrafficSplit", "ZeroTrustPolicy", "Canary", "MeshFederation", "BreakGlass"}

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
		for _, k := range kinds {
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
		certExpiryDesc, breakGlassActiveDesc, breakGlassNamespacesDesc, canaryWeightDesc, canaryPhaseDesc, objectsReadyDesc, undecodableDesc} {
		ch <- d
	}
}

func readyOf(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, meshv1alpha1.ReadyCondition); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

// Collect implements prometheus.Collector: one named step per kind over
// one scrape, then the objects-by-Ready series all steps counted into.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	rp := c.reader.Load()
	if rp == nil || *rp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), CollectTimeout)
	defer cancel()
	s := &scrape{ctx: ctx, r: *rp, ch: ch, ready: map[[2]string]float64{}, undecodable: map[string]float64{}}
	for _, step := range []func(*scrape){
		(*scrape).meshInstalls, (*scrape).meshRevisions, (*scrape).trafficSplits, (*scrape).zeroTrustPolicies,
		(*scrape).canaries, (*scrape).meshFederations, (*scrape).breakGlasses,
	} {
		step(s)
	}
	for k, v := range s.ready {
		s.gauge(objectsReadyDesc, v, k[0], k[1])
	}
	for _, k := range kinds {
		s.gauge(undecodableDesc, s.undecodable[k], k)
	}
}

// scrape is the state of one Collect: where it reads, where it writes, and
// the objects counted by kind and Ready status.
type scrape struct {
	ctx   context.Context
	r     client.Reader
	ch    chan<- prometheus.Metric
	ready map[[2]string]float64
	// undecodable counts objects with a decode note by kind.
	undecodable map[string]float64
}

func (s *scrape) gauge(d *prometheus.Desc, v float64, labels ...string) {
	s.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// list reads one kind from the cache; a failure is counted and the kind is
// left out of this scrape.
func (s *scrape) list(kind string, l client.ObjectList) bool {
	if err := s.r.List(s.ctx, l); err != nil {
		CollectErrors.WithLabelValues(kind).Inc()
		return false
	}
	return true
}

// countReady counts one object of kind by its Ready condition, and as
// undecodable when its status carries a decode note.
func (s *scrape) countReady(kind string, st *meshv1alpha1.CommonStatus) string {
	if st.DecodeError() != "" {
		s.undecodable[kind]++
	}
	rd := readyOf(st.Conditions)
	s.ready[[2]string{kind, rd}]++
	return rd
}

func (s *scrape) meshInstalls() {
	var mis meshv1alpha1.MeshInstallList
	if !s.list("MeshInstall", &mis) {
		return
	}
	meshes := map[[4]string]float64{}
	for _, m := range mis.Items {
		rd := s.countReady("MeshInstall", &m.Status.CommonStatus)
		meshes[[4]string{string(m.Spec.Provider), m.Spec.Version, m.Status.InstalledVersion, rd}]++
		if up := m.Status.Upgrade; up != nil && up.Phase != "" && up.Phase != "Completed" {
			s.gauge(upgradeMigratedDesc, float64(up.MigratedNamespaces), m.Name, up.FromVersion, up.ToVersion, string(up.Phase))
			s.gauge(upgradeTotalDesc, float64(up.TotalNamespaces), m.Name, up.FromVersion, up.ToVersion, string(up.Phase))
		}
	}
	for k, v := range meshes {
		s.gauge(meshesDesc, v, k[0], k[1], k[2], k[3])
	}
}

func (s *scrape) meshRevisions() {
	var revs meshv1alpha1.MeshRevisionList
	if !s.list("MeshRevision", &revs) {
		return
	}
	for _, rv := range revs.Items {
		s.countReady("MeshRevision", &rv.Status.CommonStatus)
		s.gauge(revisionNamespacesDesc, float64(rv.Status.NamespaceCount), rv.Name, rv.Spec.MeshInstallRef.Name, rv.Spec.Version, string(rv.Status.Phase))
		s.gauge(revisionPodsDesc, float64(rv.Status.PodCount), rv.Name, rv.Spec.MeshInstallRef.Name, rv.Spec.Version, string(rv.Status.Phase))
	}
}

func (s *scrape) trafficSplits() {
	var tss meshv1alpha1.TrafficSplitList
	if s.list("TrafficSplit", &tss) {
		for _, o := range tss.Items {
			s.countReady("TrafficSplit", &o.Status.CommonStatus)
		}
	}
}

func (s *scrape) zeroTrustPolicies() {
	var ztps meshv1alpha1.ZeroTrustPolicyList
	if s.list("ZeroTrustPolicy", &ztps) {
		for _, o := range ztps.Items {
			s.countReady("ZeroTrustPolicy", &o.Status.CommonStatus)
		}
	}
}

func (s *scrape) canaries() {
	var cans meshv1alpha1.CanaryList
	if !s.list("Canary", &cans) {
		return
	}
	for _, o := range cans.Items {
		s.countReady("Canary", &o.Status.CommonStatus)
		s.gauge(canaryWeightDesc, float64(o.Status.CanaryWeight), o.Namespace, o.Name)
		for _, p := range CanaryPhases {
			v := 0.0
			if o.Status.Phase == p {
				v = 1
			}
			s.gauge(canaryPhaseDesc, v, o.Namespace, o.Name, string(p))
		}
	}
}

func (s *scrape) meshFederations() {
	var feds meshv1alpha1.MeshFederationList
	if !s.list("MeshFederation", &feds) {
		return
	}
	for _, f := range feds.Items {
		s.countReady("MeshFederation", &f.Status.CommonStatus)
		if f.Status.Root != nil && f.Status.Root.NotAfter != nil {
			s.gauge(certExpiryDesc, float64(f.Status.Root.NotAfter.Unix()), f.Name, "", "root")
		}
		for _, m := range f.Status.Clusters {
			if m.Intermediate != nil && m.Intermediate.NotAfter != nil {
				s.gauge(certExpiryDesc, float64(m.Intermediate.NotAfter.Unix()), f.Name, m.Name, "intermediate")
			}
		}
	}
}

func (s *scrape) breakGlasses() {
	var bgs meshv1alpha1.BreakGlassList
	if !s.list("BreakGlass", &bgs) {
		return
	}
	active := 0.0
	for _, b := range bgs.Items {
		s.countReady("BreakGlass", &b.Status.CommonStatus)
		if b.DeletionTimestamp == nil && b.Status.Phase != meshv1alpha1.BreakGlassRestored {
			active++
		}
		s.gauge(breakGlassNamespacesDesc, float64(b.Status.Touched.Namespaces), b.Name, string(b.Status.Phase))
	}
	s.gauge(breakGlassActiveDesc, active)
}
