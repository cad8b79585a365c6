// Package breakglass benchmarks the BreakGlass controller on envtest: 2,000
// meshed namespaces whose injector webhook is fail-closed and unreachable
// (the control plane is down, so no pod can be created in any of them);
// time from creating the BreakGlass until a new pod can be created in every
// namespace, time until it is Engaged, and time from deleting it until the
// recorded state is back and the BreakGlass is gone; five times with one
// manager, each run printed (the goal holds in every run). Run with make
// bench.
package breakglass

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/breakglass"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/bench/report"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

func init() { ctrl.SetLogger(logr.Discard()) }

// n is the number of meshed namespaces (2,000 at full size; scaled by
// MESHPLANE_BENCH_SCALE, or set by MESHPLANE_BENCH_BREAKGLASS_N).
var n = envInt("MESHPLANE_BENCH_BREAKGLASS_N", report.Count(2000))

// runs5 is how many times one manager engages and restores: the target
// holds in every run, not on average.
const runs5 = 5

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// parallel runs f(i) for i in [0, n) on 32 goroutines.
func parallel(n int, f func(i int) error) error {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		mu   sync.Mutex
		errs []error
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d error(s), first: %w", len(errs), errs[0])
	}
	return nil
}

func BenchmarkBreakGlass2000Namespaces(b *testing.B) {
	cfg := cluster.UseEnvtest(b, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	// The manager gets ctrl.GetConfig's limits (20 QPS, burst 30), as in a
	// cluster; the fixture's own writes and probes are not throttled.
	cfg.QPS, cfg.Burst = 20, 30
	fixture := rest.CopyConfig(cfg)
	fixture.QPS, fixture.Burst = -1, 0
	ctx := context.Background()
	c, err := client.New(fixture, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshplane-system"}}); err != nil {
		b.Fatal(err)
	}
	ns := func(i int) string { return fmt.Sprintf("team-%04d", i) }
	if err := parallel(n, func(i int) error {
		return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns(i),
			Labels: map[string]string{"istio-injection": "enabled", "team": ns(i)}, Annotations: map[string]string{"owner": "team"}}})
	}); err != nil {
		b.Fatal(err)
	}
	url := "https://127.0.0.1:1/inject" // nothing listens: istiod is down
	hook := admissionregistrationv1.MutatingWebhook{
		Name: "namespace.sidecar-injector.istio.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
		Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
		FailurePolicy: ptr.To(admissionregistrationv1.Fail), SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
		NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}},
	}
	if err := c.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{hook}}); err != nil {
		b.Fatal(err)
	}
	pod := func(i, k int) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", k), Namespace: ns(i)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}}}
	}
	t0 := time.Now()
	if err := c.Create(ctx, pod(0, 0)); err == nil {
		b.Fatal("a pod was created with the injector down; the fixture is wrong")
	}
	b.Logf("a pod create refused by the unreachable injector takes %s", time.Since(t0).Round(time.Millisecond))

	mgr := testenv.StartManager(b, cfg, testenv.ManagerOptions{}, breakglass.Setup)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		b.Fatal("cache did not sync")
	}
	// Warm up as a running operator is: a BreakGlass on no namespace goes
	// through engage and restore once (informers, REST mappings).
	// (A scope naming an absent namespace stalls: the warm-up's is an
	// unmeshed one.)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warm-up"}}); err != nil {
		b.Fatal(err)
	}
	warm := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "warm-up"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "warm-up", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio},
			Scope: &meshv1alpha1.BreakGlassScope{Namespaces: []string{"warm-up"}}}}
	if err := c.Create(ctx, warm); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); warm.Status.Phase != meshv1alpha1.BreakGlassEngaged; {
		if time.Now().After(deadline) {
			b.Fatalf("warm-up not Engaged after a minute: phase %q, conditions %+v", warm.Status.Phase, warm.Status.Conditions)
		}
		time.Sleep(20 * time.Millisecond)
		if err := c.Get(ctx, client.ObjectKeyFromObject(warm), warm); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Delete(ctx, warm); err != nil {
		b.Fatal(err)
	}
	for c.Get(ctx, client.ObjectKeyFromObject(warm), warm) == nil {
		time.Sleep(20 * time.Millisecond)
	}

	b.ResetTimer()
	var runs []run
	for k := range runs5 {
		r := engageAndRestore(b, c, k, pod)
		b.Logf("run %d: %s", k+1, r)
		runs = append(runs, r)
	}
	b.StopTimer()
	// Spot-check the last restore and the outage it brings back.
	if err := c.Create(ctx, pod(n-1, 1<<20)); err == nil {
		b.Fatal("a pod was created after the restore; the webhook is not back")
	}
	var pods, sent, restore, hooks []time.Duration
	for _, r := range runs {
		pods, restore, hooks = append(pods, r.podsAt), append(restore, r.restored), append(hooks, r.neutralised)
		sent = append(sent, r.podsSent)
	}
	worst := func(ds []time.Duration) float64 { return slices.Max(ds).Seconds() }
	list := func(ds []time.Duration) string {
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
		}
		return strings.Join(s, ", ") + " s"
	}
	report.Print(fmt.Sprintf("BreakGlass, %d namespaces with the injector down, %d runs", n, runs5),
		report.Goal{Name: "pod admitted in every namespace, worst run", Value: worst(pods), Limit: 5, Unit: " s", Raw: "runs " + list(pods) + " (answer of the last namespace's first admitted probe; those probes were sent after " + list(sent) + ")"},
		report.Goal{Name: "restore (recorded state back, BreakGlass gone), worst run", Value: worst(restore), Limit: 5, Unit: " s", Raw: "runs " + list(restore)},
		report.Goal{Name: "webhooks neutralised, worst run", Value: worst(hooks), Limit: 0.5, Unit: " s", Raw: "runs " + list(hooks)},
	)
	b.ReportMetric(worst(pods), "s-until-pods-everywhere-worst")
	b.ReportMetric(worst(restore), "s-restore-worst")
	b.ReportMetric(worst(hooks), "s-until-webhook-neutralised-worst")
	b.ReportMetric(float64(n), "namespaces")
}

// run is one engage and restore.
type run struct {
	neutralised, first, median, podsAt, engaged, restored time.Duration
	// podsSent is when the last namespace's first successful probe was
	// sent (podsAt is when its answer came: the conservative figure).
	podsSent time.Duration
	rounds   int
}

func (r run) String() string {
	rd := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("injector neutralised after %s, first pod after %s, in half the namespaces after %s, everywhere after %s (%d probe rounds; the last successful probe was sent after %s), Engaged after %s, restored and gone after %s",
		rd(r.neutralised), rd(r.first), rd(r.median), rd(r.podsAt), r.rounds, rd(r.podsSent), rd(r.engaged), rd(r.restored))
}

// engageAndRestore creates a BreakGlass over every namespace, probes until
// a pod is admitted in each, waits for Engaged, deletes it and waits until
// it is gone.
func engageAndRestore(b *testing.B, c client.Client, k int, pod func(i, k int) *corev1.Pod) run {
	b.Helper()
	ctx := context.Background()
	var r run
	start := time.Now()
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("istiod-down-%d", k)},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "bench", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
	if err := c.Create(ctx, bg); err != nil {
		b.Fatal(err)
	}
	// When the API server first serves the neutralised webhook.
	var neutralisedAt atomic.Int64
	go func() {
		for time.Since(start) < 2*time.Minute {
			mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := c.Get(ctx, client.ObjectKey{Name: "istio-sidecar-injector"}, mwc); err == nil &&
				len(mwc.Webhooks[0].NamespaceSelector.MatchExpressions) > 0 {
				neutralisedAt.Store(int64(time.Since(start)))
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// Poll: one pod per namespace until each accepts one.
	admitted := make([]bool, n)
	admittedAt := make([]time.Duration, n)
	sentAt := make([]time.Duration, n)
	for {
		r.rounds++
		_ = parallel(n, func(i int) error {
			if admitted[i] {
				return nil
			}
			// Probe names are unique across runs.
			// A server-side dry run goes through admission (the injector
			// declares no side effects) and stores nothing: the probe
			// measures admission, not the API server's pod writes.
			sent := time.Since(start)
			if err := c.Create(ctx, pod(i, k*10000+r.rounds), client.DryRunAll); err == nil {
				admitted[i], admittedAt[i], sentAt[i] = true, time.Since(start), sent
			}
			return nil
		})
		done := 0
		for _, a := range admitted {
			if a {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("after 2m pods can be created in %d of %d namespaces", done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(admittedAt)
	r.first, r.median, r.podsAt = admittedAt[0], admittedAt[n/2], admittedAt[n-1]
	r.podsSent = slices.Max(sentAt)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(bg), bg); err != nil {
			b.Fatal(err)
		}
		if bg.Status.Phase == meshv1alpha1.BreakGlassEngaged {
			break
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("not Engaged after 2m: %s", bg.Status.Phase)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.engaged = time.Since(start)
	for neutralisedAt.Load() == 0 && time.Since(start) < 2*time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	r.neutralised = time.Duration(neutralisedAt.Load())
	if int(bg.Status.Touched.Namespaces) != n {
		b.Fatalf("touched %d namespaces, want %d", bg.Status.Touched.Namespaces, n)
	}

	restoreStart := time.Now()
	if err := c.Delete(ctx, bg); err != nil {
		b.Fatal(err)
	}
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(bg), bg)
		if client.IgnoreNotFound(err) != nil {
			b.Fatal(err)
		}
		if err != nil {
			break
		}
		if time.Since(restoreStart) > 2*time.Minute {
			b.Fatalf("not restored after 2m: %s", bg.Status.Phase)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.restored = time.Since(restoreStart)
	return r
}
