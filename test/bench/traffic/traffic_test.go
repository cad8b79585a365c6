// Package traffic benchmarks the TrafficSplit and ZeroTrustPolicy
// controllers at scale on envtest, with cmd/manager built and run as its
// own process (every controller, as deployed) so that its RSS is the
// manager's alone:
//
//   - 1,000 TrafficSplits + 1,000 ZeroTrustPolicies: time until all are
//     Ready at their current generation against raw server-side applies of
//     the same outputs on the same API server in the same run; the
//     manager's RSS; the requests of a no-op resync (writes, uncached
//     reads); spec change → Ready latency while 100 changes/s arrive; and
//     how long client-go's client-side rate limiter made requests wait.
//   - 10,000 TrafficSplits with their Services: the same ratio and RSS.
//
// Every figure is printed by test/bench/report with its target;
// MESHPLANE_BENCH_SCALE scales the counts down for a quick run.
// MESHPLANE_BENCH_PROFILE_DIR, when set, receives the manager's heap
// profiles after convergence.
package traffic

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/bench/report"
	"github.com/meshplane/meshplane/test/cluster"
)

func init() { ctrl.SetLogger(logr.Discard()) }

// split is the i-th TrafficSplit; it routes Service svc.
func split(ns, svc string, i int) *meshv1alpha1.TrafficSplit {
	port := int32(8080)
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ts-%d", i), Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: svc, Port: &port},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: int32(100 - i%100)}, {Name: "web-v2", Weight: int32(i % 100)}},
			Rules: []meshv1alpha1.TrafficRule{{Name: "canary", Matches: []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-canary", Value: "1"}}}},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100}}}}}}
}

func policy(ns string, i int) *meshv1alpha1.ZeroTrustPolicy {
	return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ztp-%d", i), Namespace: ns},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{DefaultAction: meshv1alpha1.ActionDeny,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", i)}},
			Rules: []meshv1alpha1.AllowRule{{From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
				To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}}}}}}
}

// inputs are the objects of one benchmark: TrafficSplits (each routing
// svc(i)) and ZeroTrustPolicies.
type inputs struct {
	splits, policies int
	svc              func(i int) string
}

func (in inputs) objects(ns string) [2][]client.Object {
	var out [2][]client.Object
	for i := range in.splits {
		out[0] = append(out[0], split(ns, in.svc(i), i))
	}
	for i := range in.policies {
		out[1] = append(out[1], policy(ns, i))
	}
	return out
}

// env is one benchmark's API server, its admin client and the manager.
type env struct {
	cfg *rest.Config
	c   client.Client
}

func newEnv(b *testing.B) *env {
	cfg := cluster.UseEnvtest(b, cluster.EnvtestOptions{})
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"raw", "bench"} {
		must(b, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}))
		for _, s := range []string{"web", "web-v1", "web-v2"} {
			must(b, c.Create(context.Background(), service(ns, s)))
		}
	}
	return &env{cfg: cfg, c: c}
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}}
}

// progress tells on stderr where a long run is.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s traffic bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// parallel runs fn(i) for i in [0,n) on workers goroutines.
func parallel(b *testing.B, n, workers int, fn func(i int) error) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// rawApply server-side applies the translated outputs of every input, one
// worker per kind (as one controller per kind), returns the time, and
// deletes the outputs again so the manager started next does not cache
// them.
func (e *env) rawApply(b *testing.B, in inputs) (time.Duration, int) {
	reg := providers.Registry()
	tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderIstio)
	pt, _ := reg.PolicyTranslator(meshv1alpha1.ProviderIstio)
	var outputs [2][]client.Object
	objs := in.objects("raw")
	for _, o := range objs[0] {
		out, err := tt.TranslateTrafficSplit(o.(*meshv1alpha1.TrafficSplit))
		must(b, err)
		outputs[0] = append(outputs[0], out...)
	}
	for _, o := range objs[1] {
		out, err := pt.TranslateZeroTrustPolicy(o.(*meshv1alpha1.ZeroTrustPolicy))
		must(b, err)
		outputs[1] = append(outputs[1], out...)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, list := range outputs {
		wg.Go(func() {
			for _, o := range list {
				u, err := apply.ToUnstructured(o, e.c.Scheme())
				if err != nil {
					b.Error(err)
					return
				}
				u.SetLabels(ownership.Labels("Bench", "raw", o.GetName()))
				if err := e.c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("meshplane"), client.ForceOwnership); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := append(outputs[0], outputs[1]...)
	parallel(b, len(all), 8, func(i int) error { return client.IgnoreNotFound(e.c.Delete(context.Background(), all[i])) })
	return elapsed, len(all)
}

// converge creates the inputs in namespace bench (one creator per kind)
// and returns the time until every one is Ready at its generation.
func (e *env) converge(b *testing.B, in inputs, tr *readyTracker) time.Duration {
	objs := in.objects("bench")
	start := time.Now()
	var wg sync.WaitGroup
	for _, list := range objs {
		wg.Go(func() {
			for _, o := range list {
				if err := e.c.Create(context.Background(), o); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	tr.waitReady(b, in.splits+in.policies, 60*time.Minute)
	return time.Since(start)
}

// BenchmarkTrafficAndPolicy: 1,000 TrafficSplits + 1,000 ZeroTrustPolicies.
func BenchmarkTrafficAndPolicy(b *testing.B) {
	n := report.Count(1000)
	in := inputs{splits: n, policies: n, svc: func(i int) string { return fmt.Sprintf("svc-%d", i) }}
	for range b.N {
		e := newEnv(b)
		raw, outputs := e.rawApply(b, in)
		progress("raw apply %s; starting the manager", raw)
		m := startManagerProcess(b, e.cfg)
		tr := trackReady(b, e.cfg, "bench")
		time.Sleep(2 * time.Second)
		rss0 := m.rss()
		// Each TrafficSplit routes its own Service (two routes of one
		// Service are a Conflict); the Services exist before the clock runs.
		parallel(b, in.splits, 8, func(i int) error { return e.c.Create(context.Background(), service("bench", in.svc(i))) })
		progress("manager ready, RSS %.0f MiB (%.0f anonymous); creating the inputs", rss0.total, rss0.anon)
		rec0, res0 := m.reconciles(b), m.reconcileResults(b)
		m.proxy.start()
		profiled := m.startCPUProfile(b, b.Name(), 15*time.Second)
		elapsed := e.converge(b, in, tr)
		sent := requestsPerInput(m.proxy.stop(), in.splits+in.policies)
		profiled()
		rec := m.reconciles(b) - rec0
		progress("all Ready after %s; reconciles: %s", elapsed, since(res0, m.reconcileResults(b)))
		time.Sleep(2 * time.Second)
		rss := m.rss()
		m.saveHeapProfile(b, "traffic-and-policy")
		ratio := elapsed.Seconds() / raw.Seconds()
		heading := fmt.Sprintf("traffic: %d TrafficSplits + %d ZeroTrustPolicies (Istio), cmd/manager as its own process", n, n)
		goals := []report.Goal{
			{Name: fmt.Sprintf("%d+%d Ready / raw apply", n, n), Value: ratio, Limit: 1.5, Unit: "×",
				Raw: fmt.Sprintf("%s vs %s raw server-side apply of the same %d outputs; %.0f reconciles; the manager's requests: %s", report.Seconds(elapsed), report.Seconds(raw), outputs, rec, sent)},
			{Name: fmt.Sprintf("manager RSS at %d+%d", n, n), Value: rss.total, Limit: 120, Unit: " MiB",
				Raw: rss.raw(rss0, 2*n, "input object (with its outputs)")},
		}
		goals = append(goals, e.noopResync(b, m, 2*n)...)
		progress("no-op resync done; spec changes")
		goals = append(goals, e.specChanges(b, m, tr, n))
		goals = append(goals, rateLimiterGoal(b, m))
		report.Print(heading, goals...)
	}
}

// BenchmarkTrafficSplits10k: 10,000 TrafficSplits, each routing its own
// Service.
func BenchmarkTrafficSplits10k(b *testing.B) {
	n := report.Count(10000)
	in := inputs{splits: n, svc: func(i int) string { return fmt.Sprintf("svc-%d", i) }}
	for range b.N {
		e := newEnv(b)
		raw, outputs := e.rawApply(b, in)
		progress("raw apply %s; starting the manager", raw)
		m := startManagerProcess(b, e.cfg)
		tr := trackReady(b, e.cfg, "bench")
		time.Sleep(2 * time.Second)
		rss0 := m.rss()
		parallel(b, n, 8, func(i int) error { return e.c.Create(context.Background(), service("bench", in.svc(i))) })
		progress("manager ready, RSS %.0f MiB (%.0f anonymous); creating the inputs", rss0.total, rss0.anon)
		rec0, res0 := m.reconciles(b), m.reconcileResults(b)
		m.proxy.start()
		profiled := m.startCPUProfile(b, b.Name(), 15*time.Second)
		elapsed := e.converge(b, in, tr)
		sent := requestsPerInput(m.proxy.stop(), in.splits+in.policies)
		profiled()
		rec := m.reconciles(b) - rec0
		progress("all Ready after %s; reconciles: %s", elapsed, since(res0, m.reconcileResults(b)))
		time.Sleep(2 * time.Second)
		rss := m.rss()
		m.saveHeapProfile(b, "trafficsplits-10k")
		report.Print(fmt.Sprintf("traffic: %d TrafficSplits with their %d Services (Istio), cmd/manager as its own process", n, n),
			report.Goal{Name: fmt.Sprintf("%d TrafficSplits Ready / raw apply", n), Value: elapsed.Seconds() / raw.Seconds(), Limit: 1.5, Unit: "×",
				Raw: fmt.Sprintf("%s vs %s raw server-side apply of the same %d outputs; %.0f reconciles; the manager's requests: %s", report.Seconds(elapsed), report.Seconds(raw), outputs, rec, sent)},
			report.Goal{Name: fmt.Sprintf("manager RSS at %d TrafficSplits", n), Value: rss.total, Limit: 300, Unit: " MiB",
				Raw: rss.raw(rss0, n, "TrafficSplit (with its Service and outputs)")})
	}
}

// requestsPerInput lists the requests a convergence sent per input object,
// by verb ("2.00 apply, 1.00 dryrun-apply, …"): the API server's work
// Meshplane adds to the raw applies' one apply per output.
func requestsPerInput(counts map[string]int, inputs int) string {
	byVerb := map[string]int{}
	for k, v := range counts {
		verb, _, _ := strings.Cut(k, " ")
		byVerb[verb] += v
	}
	var parts []string
	for verb, v := range byVerb {
		parts = append(parts, fmt.Sprintf("%.2f %s", float64(v)/float64(inputs), verb))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ") + " per input"
}

// noopResync makes both controllers reconcile every object (a namespace
// label change) while nothing changed, and counts the manager's requests
// meanwhile: writes must be 0, uncached reads at most one per object.
func (e *env) noopResync(b *testing.B, m *managerProc, objects int) []report.Goal {
	time.Sleep(2 * time.Second)
	before := m.reconciles(b)
	m.proxy.start()
	patch := []byte(`{"metadata":{"labels":{"bench.meshplane.io/resync":"1"}}}`)
	must(b, e.c.Patch(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, client.RawPatch(types.MergePatchType, patch)))
	deadline := time.Now().Add(10 * time.Minute)
	for m.reconciles(b)-before < float64(objects) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	done := m.reconciles(b) - before
	time.Sleep(time.Second)
	counts := m.proxy.stop()
	if done < float64(objects) {
		b.Fatalf("the resync reconciled %v of %d objects", done, objects)
	}
	writes, wraw := tally(counts, "create", "update", "patch", "apply", "delete")
	dry, draw := tally(counts, "dryrun-create", "dryrun-update", "dryrun-patch", "dryrun-apply", "dryrun-delete")
	reads, rraw := tally(counts, "get", "list")
	return []report.Goal{
		{Name: "writes per no-op resync", Value: float64(writes), Limit: 0,
			Raw: fmt.Sprintf("%.0f reconciles of %d objects; writes: %s; dry runs: %d (%s)", done, objects, wraw, dry, draw)},
		{Name: "uncached reads per object per no-op resync", Value: float64(reads) / float64(objects), Limit: 1,
			Raw: fmt.Sprintf("%d reads for %d objects: %s", reads, objects, rraw)},
	}
}

// specChanges changes TrafficSplits' weights at 100 changes/s, round robin,
// and measures each change until Ready at its generation.
func (e *env) specChanges(b *testing.B, m *managerProc, tr *readyTracker, n int) report.Goal {
	rec0 := m.reconciles(b)
	const rate = 100
	changes := report.Count(1000)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range jobs {
				i := k % n
				w := (k/n + 1 + i) % 100
				patch := fmt.Sprintf(`{"spec":{"backends":[{"name":"web-v1","weight":%d},{"name":"web-v2","weight":%d}]}}`, 100-w, w)
				ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ts-%d", i), Namespace: "bench"}}
				since := time.Now()
				if err := e.c.Patch(context.Background(), ts, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
					b.Error(err)
					continue
				}
				tr.expect("TrafficSplit/"+ts.Name, ts.Generation, since)
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(time.Second / rate)
	for k := range changes {
		<-tick.C
		jobs <- k
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	sent := time.Since(start)
	lat, left := tr.waitChanges(time.Minute)
	rec := m.reconciles(b) - rec0
	p99 := report.Percentile(lat, 99)
	g := report.Goal{Name: "spec change → Ready p99 under 100 changes/s", Value: float64(p99.Milliseconds()), Limit: 1000, Unit: " ms",
		Raw: fmt.Sprintf("%d changes in %s (%.0f/s); p50 %s, max %s; %d not Ready after a minute; %.1f reconciles per change", changes, report.Seconds(sent),
			float64(changes)/sent.Seconds(), report.Percentile(lat, 50).Round(time.Millisecond), report.Percentile(lat, 100).Round(time.Millisecond), left, rec/float64(changes))}
	if left > 0 {
		g.Value = time.Minute.Seconds() * 1000
	}
	return g
}

// rateLimiterGoal reads how long the manager's requests waited for
// client-go's client-side rate limiter (rest_client_rate_limiter_duration_
// seconds; buckets from 5 ms).
func rateLimiterGoal(b *testing.B, m *managerProc) report.Goal {
	count := m.metric(b, "rest_client_rate_limiter_duration_seconds_count")
	sum := m.metric(b, "rest_client_rate_limiter_duration_seconds_sum")
	fast := m.metric(b, "rest_client_rate_limiter_duration_seconds_bucket", `le="0.005"`)
	return report.Goal{Name: "requests that waited ≥ 5 ms for the client-side rate limiter", Value: count - fast, Limit: 0,
		Raw: fmt.Sprintf("%d requests sent, %.0f passed a rate limiter, %.3f s waited in all (the manager sets no QPS: controller-runtime's -1, no client-side limiter; the API server's priority and fairness applies)", m.proxy.total.Load(), count, sum)}
}
