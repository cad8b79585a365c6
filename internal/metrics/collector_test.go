package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

var (
	reStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	reMatchers = regexp.MustCompile(`\{[^}]*\}`)
	reRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	reLabelVal = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression reads.
func metricNames(expr string) []string {
	if m := reLabelVal.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	e := reStrings.ReplaceAllString(expr, " ")
	e = reMatchers.ReplaceAllString(e, " ")
	e = reRanges.ReplaceAllString(e, " ")
	e = reGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if keywords[strings.ToLower(name)] || (loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.')) {
			continue
		}
		if rest := strings.TrimLeft(e[loc[1]:], " \t"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.99, sum by (le, controller) (rate(controller_runtime_reconcile_time_seconds_bucket[5m])))`: "controller_runtime_reconcile_time_seconds_bucket",
		`meshplane_upgrade_migrated_namespaces / meshplane_upgrade_total_namespaces`:                                     "meshplane_upgrade_migrated_namespaces meshplane_upgrade_total_namespaces",
		`sum(meshplane_meshes{ready!="True"}) or vector(0)`:                                                              "meshplane_meshes",
		`(meshplane_federation_certificate_expiry_timestamp_seconds - time()) / 86400`:                                   "meshplane_federation_certificate_expiry_timestamp_seconds",
		`meshplane_canary_phase == 1 and on (canary) meshplane_canary_weight > 1e3`:                                      "meshplane_canary_phase meshplane_canary_weight",
		`label_values(meshplane_build_info, job)`:                                                                        "meshplane_build_info",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// dashboardExprs returns every PromQL expression of a Grafana dashboard:
// panel targets (rows' nested panels too) and query variables.
func dashboardExprs(t *testing.T, b []byte) []string {
	t.Helper()
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var exprs []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p struct {
				Title   string            `json:"title"`
				Panels  []json.RawMessage `json:"panels"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a target without expr", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			exprs = append(exprs, q)
		}
	}
	return exprs
}

// missingMetrics returns the metric names of exprs that fams lacks.
func missingMetrics(exprs []string, fams map[string]*dto.MetricFamily) []string {
	var missing []string
	for _, e := range exprs {
		for _, n := range metricNames(e) {
			if _, ok := fams[n]; ok {
				continue
			}
			found := false
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := fams[strings.TrimSuffix(n, suffix)]; ok && strings.HasSuffix(n, suffix) &&
					(f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
					found = true
				}
			}
			if !found {
				missing = append(missing, n)
			}
		}
	}
	return missing
}

func gather(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	fs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

// value returns the value of the series of family name whose labels
// include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// TestCollectorAndDashboard runs the real manager on envtest, creates one
// object of every kind with a status, and checks the collector's series and
// that every metric the Grafana dashboard queries is in controller-runtime's
// registry. A probe controller (a no-op reconciler for MeshInstall) makes
// controller-runtime create its per-controller series, as each real
// controller does once registered.
func TestCollectorAndDashboard(t *testing.T) {
	ctrl.SetLogger(logr.Discard())
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	metricsAddr := testenv.FreeAddr(t)
	probe := func(mgr *manager.Manager) error {
		return ctrl.NewControllerManagedBy(mgr).For(&meshv1alpha1.MeshInstall{}).Named("metricsprobe").
			Complete(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil }))
	}
	m := testenv.StartManager(testenv.Strict(t), srv.Config,
		testenv.ManagerOptions{Options: manager.Options{MetricsAddr: metricsAddr, ProbeAddr: "0", SyncPeriod: time.Hour}}, probe)
	ctx := context.Background()
	c := m.Client
	notAfter := metav1.NewTime(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))
	create := func(obj client.Object, status func()) {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
		status()
		if err := c.Status().Update(ctx, obj); err != nil {
			t.Fatalf("status of %T: %v", obj, err)
		}
	}
	readyTrue := []metav1.Condition{{Type: meshv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: meshv1alpha1.SucceededReason, LastTransitionTime: metav1.Now()}}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.29.0"}}
	create(mi, func() {
		mi.Status.InstalledVersion = "1.28.1"
		mi.Status.Conditions = readyTrue
		mi.Status.Upgrade = &meshv1alpha1.UpgradeStatus{Phase: "Migrating", FromVersion: "1.28.1", ToVersion: "1.29.0", TotalNamespaces: 10, MigratedNamespaces: 4}
	})
	rev := &meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "1-29-0"}, Spec: meshv1alpha1.MeshRevisionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Version: "1.29.0"}}
	create(rev, func() { rev.Status.Phase = "InUse"; rev.Status.NamespaceCount = 4; rev.Status.PodCount = 17 })
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	can := &meshv1alpha1.Canary{}
	readSample(t, root, "meshplane_v1alpha1_canary.yaml", can)
	can.Namespace = "shop"
	create(can, func() { can.Status.Phase = meshv1alpha1.CanaryPhaseProgressing; can.Status.CanaryWeight = 25 })
	fed := &meshv1alpha1.MeshFederation{}
	readSample(t, root, "meshplane_v1alpha1_meshfederation.yaml", fed)
	create(fed, func() {
		fed.Status.Root = &meshv1alpha1.CertificateInfo{NotAfter: &notAfter}
		fed.Status.Clusters = []meshv1alpha1.MemberClusterStatus{{Name: "east", Intermediate: &meshv1alpha1.CertificateInfo{NotAfter: &notAfter}}}
	})
	bg := &meshv1alpha1.BreakGlass{}
	readSample(t, root, "meshplane_v1alpha1_breakglass.yaml", bg)
	create(bg, func() { bg.Status.Phase = meshv1alpha1.BreakGlassEngaged; bg.Status.Touched.Namespaces = 500 })

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"meshplane_meshes", map[string]string{"provider": "Istio", "version": "1.29.0", "installed_version": "1.28.1", "ready": "True"}, 1},
		{"meshplane_upgrade_migrated_namespaces", map[string]string{"meshinstall": "istio", "to_version": "1.29.0"}, 4},
		{"meshplane_upgrade_total_namespaces", map[string]string{"meshinstall": "istio"}, 10},
		{"meshplane_revision_pods", map[string]string{"meshrevision": "1-29-0", "meshinstall": "istio"}, 17},
		{"meshplane_canary_weight", map[string]string{"namespace": "shop", "canary": can.Name}, 25},
		{"meshplane_canary_phase", map[string]string{"canary": can.Name, "phase": "Progressing"}, 1},
		{"meshplane_canary_phase", map[string]string{"canary": can.Name, "phase": "Failed"}, 0},
		{"meshplane_federation_certificate_expiry_timestamp_seconds", map[string]string{"certificate": "root"}, float64(notAfter.Unix())},
		{"meshplane_federation_certificate_expiry_timestamp_seconds", map[string]string{"cluster": "east", "certificate": "intermediate"}, float64(notAfter.Unix())},
		{"meshplane_breakglasses_active", nil, 1},
		{"meshplane_breakglass_namespaces", map[string]string{"breakglass": bg.Name, "phase": "Engaged"}, 500},
		{"meshplane_objects", map[string]string{"kind": "Canary", "ready": "Unknown"}, 1},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "metricsprobe", "result": "success"}, -1},
	}
	var fams map[string]*dto.MetricFamily
	testenv.Eventually(t, testenv.DefaultTimeout, "metrics", func() error {
		fams = gather(t)
		var wrong []string
		for _, ch := range checks {
			// want -1: any positive value (a count of reconciles).
			if got, ok := value(fams, ch.name, ch.labels); !ok || (ch.want >= 0 && got != ch.want) || (ch.want < 0 && got <= 0) {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v (found %v), want %v", ch.name, ch.labels, got, ok, ch.want))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("\n%s", strings.Join(wrong, "\n"))
		}
		return nil
	})

	b, err := os.ReadFile(filepath.Join(root, "config", "grafana", "meshplane.json"))
	if err != nil {
		t.Fatal(err)
	}
	exprs := dashboardExprs(t, b)
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries", len(exprs))
	}
	if missing := missingMetrics(exprs, fams); len(missing) > 0 {
		names := make([]string, 0, len(fams))
		for n := range fams {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("the dashboard queries metrics the operator does not export: %v\nexported: %v", missing, names)
	}
	// The check can fail: a made-up name is reported.
	if m := missingMetrics([]string{`rate(meshplane_reconciles_total[5m])`}, fams); len(m) != 1 {
		t.Errorf("a metric that does not exist was not reported: %v", m)
	}

	// And the registry is what /metrics serves.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, s := range []string{"meshplane_breakglasses_active 1", `meshplane_canary_weight{canary="` + can.Name + `",namespace="shop"} 25`} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

func readSample(t *testing.T, root, file string, obj client.Object) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yamlUnmarshal(b, obj); err != nil {
		t.Fatal(err)
	}
}

var yamlUnmarshal = yaml.UnmarshalStrict
