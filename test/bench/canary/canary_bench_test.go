// Package canary benchmarks the Canary controller on envtest, against one
// fake Prometheus, every Canary analysed every second:
//
//   - BenchmarkCanaryRollback: 1,000 Canaries held at 50% by a
//     confirm-promotion gate, then all failing at once (threshold 1): per
//     Canary the time from the metrics server's failing answer to the route
//     read back from the API server (a watch) with canary weight 0, and
//     the per-interval requests of a held Canary.
//   - BenchmarkCanaryPromotion: 100 Canaries promoting at once through 5
//     steps (a 5 s minimum): time to Succeeded, the analysis period, and
//     the time from the metric turning bad to weight 0.
//
// Run with make bench; MESHPLANE_BENCH_SCALE scales the counts down.
package canary

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	canaryctl "github.com/meshplane/meshplane/controllers/canary"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/test/bench/report"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeprom"
	"github.com/meshplane/meshplane/test/testenv"
)

func init() { ctrl.SetLogger(logr.Discard()) }

// rollbackN and promoteN are the Canaries of each benchmark.
var (
	rollbackN = envInt("MESHPLANE_BENCH_CANARIES", report.Count(1000))
	promoteN  = envInt("MESHPLANE_BENCH_PROMOTING", report.Count(100))
)

// interval is every Canary's analysis interval; steps its step weights.
const interval = time.Second

var steps = []int32{10, 20, 30, 40, 50}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

const ns = "bench"

var targetRE = regexp.MustCompile(`target="([^"]+)"`)

// answers records, per canary, when each answer was written.
type answers struct {
	mu sync.Mutex
	at map[string][]time.Time
}

// gaps returns, per canary, the times between its consecutive queries
// within [from, to).
func (a *answers) gaps(from, to time.Time) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	for _, ts := range a.at {
		var prev time.Time
		for _, x := range ts {
			if x.Before(from) || !x.Before(to) {
				continue
			}
			if !prev.IsZero() {
				out = append(out, x.Sub(prev))
			}
			prev = x
		}
	}
	return out
}

func (a *answers) lastBefore(name string, t time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var last time.Time
	for _, x := range a.at[name] {
		if x.Before(t) {
			last = x
		}
	}
	return last
}

// rollout stands in for kube-controller-manager: every Deployment reports
// its spec rolled out and Available, 16 status updates at a time (one at a
// time, a sweep over 2,000 Deployments took seconds and the benchmark
// measured the stand-in).
func rollout(ctx context.Context, c client.Client) {
	for ctx.Err() == nil {
		var list appsv1.DeploymentList
		if c.List(ctx, &list, client.InNamespace(ns)) == nil {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16)
			for i := range list.Items {
				d := &list.Items[i]
				want := *d.Spec.Replicas
				if d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == want && d.Status.AvailableReplicas == want {
					continue
				}
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want, ReadyReplicas: want, AvailableReplicas: want}
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					_ = c.Status().Update(ctx, d)
				}()
			}
			wg.Wait()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bench is one benchmark's cluster, manager, metrics server and Canaries.
type bench struct {
	c     client.Client
	cfg   *rest.Config
	prom  *fakeprom.Server
	rec   *answers
	names []string
	// reads and writes count the manager's requests (a watch is not a
	// read).
	reads, writes *atomic.Int64
	// hold makes the confirm-promotion gate hold.
	hold atomic.Bool
}

// countRequests returns a copy of cfg whose clients count reads (GET but
// watches) and writes (everything else).
func countRequests(cfg *rest.Config) (*rest.Config, *atomic.Int64, *atomic.Int64) {
	var reads, writes atomic.Int64
	counted := rest.CopyConfig(cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(r *http.Request) (*http.Response, error) {
			switch {
			case r.URL.Query().Get("watch") == "true":
			case r.Method == http.MethodGet:
				reads.Add(1)
			default:
				writes.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	return counted, &reads, &writes
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// start runs the manager and creates n Deployments with a Canary each
// (interval 1 s, threshold 1, steps 10..50); hold makes a confirm-promotion
// gate hold every Canary at its last step. It returns once every Canary is
// Initialized.
func start(b *testing.B, ctx context.Context, n int, hold bool) *bench {
	cfg := cluster.UseEnvtest(b, cluster.EnvtestOptions{})
	counted, reads, writes := countRequests(cfg)
	testenv.StartManager(b, counted, testenv.ManagerOptions{}, canaryctl.Setup)
	// The fixture's requests are not counted.
	c := testenv.NewClient(b, cfg)
	go rollout(ctx, c)
	be := &bench{c: c, cfg: cfg, prom: fakeprom.Start(b), rec: &answers{at: map[string][]time.Time{}}, reads: reads, writes: writes}
	be.prom.SetDefault(1) // 1 = healthy
	u, _ := url.Parse(be.prom.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	// The proxy keeps as many idle connections to the fake Prometheus as
	// the manager keeps to the proxy (net/http's default of 2 reopened one
	// per query).
	pt := http.DefaultTransport.(*http.Transport).Clone()
	pt.MaxIdleConnsPerHost = analysis.IdleConnsPerHost
	rp.Transport = pt
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		q := form.Get("query") + r.URL.Query().Get("query")
		rp.ServeHTTP(w, r)
		if m := targetRE.FindStringSubmatch(q); m != nil {
			be.rec.mu.Lock()
			be.rec.at[m[1]] = append(be.rec.at[m[1]], time.Now())
			be.rec.mu.Unlock()
		}
	}))
	b.Cleanup(proxy.Close)
	// confirm-promotion holds every canary at its last step (50%) while
	// be.hold is set.
	be.hold.Store(hold)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if be.hold.Load() {
			http.Error(w, "hold", http.StatusForbidden)
		}
	}))
	b.Cleanup(gate.Close)
	hooks := []meshv1alpha1.CanaryWebhook{{Name: "hold", Type: "confirm-promotion", URL: gate.URL}}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}); err != nil {
		b.Fatal(err)
	}
	be.names = make([]string, n)
	for i := range n {
		name := fmt.Sprintf("app-%04d", i)
		be.names[i] = name
		r := int32(1)
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{
			Replicas: &r, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}}}
		max := "0.5"
		cn := &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: meshv1alpha1.CanarySpec{
			TargetRef: meshv1alpha1.CanaryTargetReference{Name: name}, Service: meshv1alpha1.CanaryService{Port: 8080},
			Strategy: meshv1alpha1.StrategyCanary,
			Analysis: meshv1alpha1.CanaryAnalysis{Interval: &metav1.Duration{Duration: interval}, Threshold: 1,
				StepWeights:   steps,
				MetricsServer: &meshv1alpha1.MetricsServer{Address: proxy.URL},
				Webhooks:      hooks,
				Metrics: []meshv1alpha1.CanaryMetric{{Name: "errors", Query: `errors{target="{{ target }}"}`,
					ThresholdRange: meshv1alpha1.ThresholdRange{Min: &max}}}}}}
		for _, o := range []client.Object{d, cn} {
			if err := c.Create(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	}
	t0 := time.Now()
	be.waitAll(b, "Initialized", func(cn *meshv1alpha1.Canary) bool { return cn.Status.Phase == meshv1alpha1.CanaryPhaseInitialized })
	b.Logf("%d Canaries Initialized after %s", n, time.Since(t0).Round(time.Millisecond))
	return be
}

// weightZero watches the routes until every Canary's is at canary weight 0
// and returns when each got there.
func (be *bench) weightZero(b *testing.B, w watch.Interface) map[string]time.Time {
	routeReaders := providers.Registry()
	zero := map[string]time.Time{}
	deadline := time.After(2 * time.Minute)
	for len(zero) < len(be.names) {
		select {
		case ev := <-w.ResultChan():
			uo, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || zero[uo.GetName()] != (time.Time{}) {
				continue
			}
			if weight, _, err := routeReaders.CanaryShare(uo, uo.GetName()+"-canary"); err == nil && weight == 0 {
				zero[uo.GetName()] = time.Now()
			}
		case <-deadline:
			b.Fatalf("%d of %d routes at weight 0 after 2 minutes", len(zero), len(be.names))
		}
	}
	return zero
}

func watchRoutes(b *testing.B, ctx context.Context, cfg *rest.Config) watch.Interface {
	w, err := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}).
		Namespace(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	return w
}

func latencies(s []time.Duration) string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s", report.Percentile(s, 50).Round(time.Millisecond),
		report.Percentile(s, 99).Round(time.Millisecond), report.Percentile(s, 100).Round(time.Millisecond))
}

func BenchmarkCanaryRollback(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be := start(b, ctx, rollbackN, true)
	for _, name := range be.names {
		setImage(b, be.c, name, "app:2")
	}
	be.waitAll(b, "WaitingPromotion", func(cn *meshv1alpha1.Canary) bool {
		return cn.Status.Phase == meshv1alpha1.CanaryPhaseWaitingPromotion && cn.Status.CanaryWeight == 50
	})
	// What a held Canary costs per interval.
	const window = 10 * time.Second
	r0, w0 := be.reads.Load(), be.writes.Load()
	time.Sleep(window)
	perInterval := func(v int64) float64 {
		return float64(v) / float64(len(be.names)) / (window.Seconds() / interval.Seconds())
	}
	reads, writes := perInterval(be.reads.Load()-r0), perInterval(be.writes.Load()-w0)
	w := watchRoutes(b, ctx, be.cfg)
	b.ResetTimer()
	failAt := time.Now()
	be.prom.SetDefault(0) // below min 0.5: every check fails; threshold 1
	zero := be.weightZero(b, w)
	b.StopTimer()
	var lat []time.Duration
	for name, z := range zero {
		last := be.rec.lastBefore(name, z)
		if last.Before(failAt) {
			b.Fatalf("%s: weight 0 before any failing answer", name)
		}
		lat = append(lat, z.Sub(last))
	}
	n := len(be.names)
	report.Print(fmt.Sprintf("Canary rollback, %d Canaries failing at once (interval 1 s, threshold 1)", n),
		report.Goal{Name: "failing answer -> route at weight 0, every Canary (max)", Value: report.Percentile(lat, 100).Seconds(), Limit: 1, Unit: " s", Raw: latencies(lat)},
	)
	fmt.Printf("   INFO   held Canary per 1 s interval: %.2f reads, %.2f writes (manager's requests over %s / %d Canaries)\n", reads, writes, window, n)
	b.ReportMetric(float64(n), "canaries")
	b.ReportMetric(float64(report.Percentile(lat, 50).Microseconds())/1000, "fail-to-weight0-p50-ms")
	b.ReportMetric(float64(report.Percentile(lat, 100).Microseconds())/1000, "fail-to-weight0-max-ms")
	b.ReportMetric(reads, "held-reads/interval")
	b.ReportMetric(writes, "held-writes/interval")
}

func BenchmarkCanaryPromotion(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be := start(b, ctx, promoteN, false)
	n := len(be.names)
	minimum := time.Duration(len(steps)) * interval

	// Promotion: every target changes at once.
	// Each Canary's promotion counts from its own target's change: the
	// benchmark's 100 updates, one after the other, take about a second.
	tl := watchTimeline(b, ctx, be.cfg)
	t0 := time.Now()
	changed := map[string]time.Time{}
	for _, name := range be.names {
		setImage(b, be.c, name, "app:2")
		changed[name] = time.Now()
	}
	done := be.waitEach(b, func(cn *meshv1alpha1.Canary) bool {
		return cn.Status.Phase == meshv1alpha1.CanaryPhaseSucceeded && cn.Status.LastAppliedSpec != ""
	})
	var promote, fromFirst []time.Duration
	for name, at := range done {
		promote = append(promote, at.Sub(changed[name]))
		fromFirst = append(fromFirst, at.Sub(t0))
	}
	periods := be.rec.gaps(t0, time.Now())
	p50 := report.Percentile(promote, 50)
	med := median(done)
	fmt.Printf("   INFO   the median Canary's phase/weight, from its target's change: %s\n", tl.of(med, changed[med]))
	report.Print(fmt.Sprintf("Canary promotion, %d Canaries at once (interval 1 s, 5 steps: a %s minimum)", n, minimum),
		report.Goal{Name: "promotion p50 / minimum", Value: p50.Seconds() / minimum.Seconds(), Limit: 1.5, Unit: "×", Raw: "promotion " + latencies(promote) + "; from the first change: " + latencies(fromFirst)},
		report.Goal{Name: "analysis period p50 / interval", Value: report.Percentile(periods, 50).Seconds() / interval.Seconds(), Limit: 1.2, Unit: "×", Raw: "period " + latencies(periods)},
	)

	// Metric turned bad during an analysis: a new revision held at its
	// last step by the gate (so every Canary is under analysis at once),
	// then the metric fails.
	be.hold.Store(true)
	for _, name := range be.names {
		setImage(b, be.c, name, "app:3")
	}
	be.waitAll(b, "WaitingPromotion", func(cn *meshv1alpha1.Canary) bool {
		return cn.Status.Phase == meshv1alpha1.CanaryPhaseWaitingPromotion && cn.Status.CanaryWeight == steps[len(steps)-1]
	})
	w := watchRoutes(b, ctx, be.cfg)
	badAt := time.Now()
	be.prom.SetDefault(0)
	zero := be.weightZero(b, w)
	var bad []time.Duration
	for _, z := range zero {
		bad = append(bad, z.Sub(badAt))
	}
	report.Print(fmt.Sprintf("Canary metric turned bad, %d Canaries under analysis at once", n),
		report.Goal{Name: "metric turned bad -> weight 0 (max)", Value: report.Percentile(bad, 100).Seconds(), Limit: interval.Seconds()*1 + 1, Unit: " s", Raw: latencies(bad) + "; target interval × threshold 1 + 1 s"},
	)
	b.ReportMetric(float64(n), "canaries")
	b.ReportMetric(p50.Seconds(), "promotion-p50-s")
	b.ReportMetric(report.Percentile(periods, 50).Seconds(), "period-p50-s")
	b.ReportMetric(report.Percentile(bad, 100).Seconds(), "bad-to-weight0-max-s")
}

// waitEach polls until every Canary satisfies ok and returns when each
// first did.
func (be *bench) waitEach(b *testing.B, ok func(*meshv1alpha1.Canary) bool) map[string]time.Time {
	b.Helper()
	at := map[string]time.Time{}
	deadline := time.Now().Add(5 * time.Minute)
	for len(at) < len(be.names) {
		var list meshv1alpha1.CanaryList
		if err := be.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for i := range list.Items {
			if _, seen := at[list.Items[i].Name]; !seen && ok(&list.Items[i]) {
				at[list.Items[i].Name] = now
			}
		}
		if now.After(deadline) {
			b.Fatalf("%d of %d done after 5 minutes", len(at), len(be.names))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return at
}

func (be *bench) waitAll(b *testing.B, what string, ok func(*meshv1alpha1.Canary) bool) {
	b.Helper()
	n := len(be.names)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list meshv1alpha1.CanaryList
		if err := be.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		done := 0
		for i := range list.Items {
			if ok(&list.Items[i]) {
				done++
			}
		}
		if done == n {
			return
		}
		if time.Now().After(deadline) {
			st := list.Items[0].Status
			b.Fatalf("%s: %d of %d; %s: phase %s weight %d message %q conditions %+v", what, done, n, list.Items[0].Name, st.Phase, st.CanaryWeight, st.Message, st.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func setImage(b *testing.B, c client.Client, name, image string) {
	b.Helper()
	for i := 0; ; i++ {
		d := &appsv1.Deployment{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			b.Fatal(err)
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		err := c.Update(context.Background(), d)
		if err == nil {
			return
		}
		if i > 50 {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timeline records, per Canary, when its status first showed each phase
// and step.
type timeline struct {
	mu sync.Mutex
	at map[string][]string
	ts map[string][]time.Time
}

func watchTimeline(b *testing.B, ctx context.Context, cfg *rest.Config) *timeline {
	res := dynamic.NewForConfigOrDie(cfg).Resource(meshv1alpha1.GroupVersion.WithResource("canaries")).Namespace(ns)
	tl := &timeline{at: map[string][]string{}, ts: map[string][]time.Time{}}
	events := make(chan watch.Event, 4096)
	go func() {
		// The API server may end a watch: start another (a step seen
		// late is seen).
		for ctx.Err() == nil {
			w, err := res.Watch(ctx, metav1.ListOptions{})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				events <- ev
			}
			w.Stop()
		}
	}()
	go func() {
		for ev := range events {
			uo, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			phase, _, _ := unstructured.NestedString(uo.Object, "status", "phase")
			weight, _, _ := unstructured.NestedInt64(uo.Object, "status", "canaryWeight")
			step := fmt.Sprintf("%s/%d", phase, weight)
			tl.mu.Lock()
			if seen := tl.at[uo.GetName()]; len(seen) == 0 || seen[len(seen)-1] != step {
				tl.at[uo.GetName()] = append(seen, step)
				tl.ts[uo.GetName()] = append(tl.ts[uo.GetName()], time.Now())
			}
			tl.mu.Unlock()
		}
	}()
	return tl
}

func (tl *timeline) of(name string, t0 time.Time) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var parts []string
	for i, step := range tl.at[name] {
		parts = append(parts, fmt.Sprintf("%s +%.2fs", step, tl.ts[name][i].Sub(t0).Seconds()))
	}
	return name + ": " + strings.Join(parts, ", ")
}

// median is the name whose time is the median of at.
func median(at map[string]time.Time) string {
	names := make([]string, 0, len(at))
	for n := range at {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return at[names[i]].Before(at[names[j]]) })
	return names[len(names)/2]
}
