// Package traffic benchmarks the TrafficSplit and ZeroTrustPolicy
// controllers at scale on envtest: 1,000 of each, time until all are Ready
// with a current observedGeneration, against the same outputs applied as
// raw server-side applies on the same API server in the same run; writes
// per no-op resync; and the process's RSS. Run with make bench.
package traffic

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

func init() { ctrl.SetLogger(logr.Discard()) }

// n is the number of TrafficSplits and of ZeroTrustPolicies.
var n = envInt("MESHPLANE_BENCH_N", 1000)

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func split(ns string, i int) *meshv1alpha1.TrafficSplit {
	port := int32(8080)
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ts-%d", i), Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web", Port: &port},
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

func reconciles() float64 {
	mfs, _ := crmetrics.Registry.Gather()
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && (l.GetValue() == "trafficsplit" || l.GetValue() == "zerotrustpolicy") {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func rssMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

func BenchmarkTrafficAndPolicy(b *testing.B) {
	cfg := cluster.UseEnvtest(b, cluster.EnvtestOptions{})
	cfg.QPS, cfg.Burst = 1000, 2000
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"raw", "bench"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}); err != nil {
			b.Fatal(err)
		}
		for _, s := range []string{"web", "web-v1", "web-v2"} {
			if err := c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s, Namespace: ns},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range b.N {
		raw := rawApply(b, c, "raw")
		ctrlTime, noop, events := controllers(b, cfg, c, "bench")
		b.ReportMetric(raw.Seconds(), "raw-ssa-s")
		b.ReportMetric(ctrlTime.Seconds(), "controllers-s")
		b.ReportMetric(ctrlTime.Seconds()/raw.Seconds(), "ratio")
		b.ReportMetric(float64(noop), "writes/noop-resync")
		b.ReportMetric(rssMiB(), "RSS-MiB")
		fmt.Printf("traffic bench: %d TrafficSplits + %d ZeroTrustPolicies (Istio)\n", n, n)
		fmt.Printf("  raw server-side apply of the same outputs: %s\n", raw.Round(time.Millisecond))
		fmt.Printf("  controllers, create to all Ready at current observedGeneration: %s (ratio %.2f, target <= 2)\n", ctrlTime.Round(time.Millisecond), ctrlTime.Seconds()/raw.Seconds())
		fmt.Printf("  writes during a no-op resync of all %d objects: %d (target 0); events: %d\n", 2*n, noop, events)
		fmt.Printf("  process RSS (manager + bench client): %.0f MiB (target <= 150)\n", rssMiB())
	}
}

// rawApply server-side applies the translated outputs of every object,
// two workers (one per kind, as the two controllers), and returns the time.
func rawApply(b *testing.B, c client.Client, ns string) time.Duration {
	reg := providers.Registry()
	tt, _ := reg.TrafficTranslator(meshv1alpha1.ProviderIstio)
	pt, _ := reg.PolicyTranslator(meshv1alpha1.ProviderIstio)
	var outputs [2][]client.Object
	for i := range n {
		objs, err := tt.TranslateTrafficSplit(split(ns, i))
		if err != nil {
			b.Fatal(err)
		}
		outputs[0] = append(outputs[0], objs...)
		objs, err = pt.TranslateZeroTrustPolicy(policy(ns, i))
		if err != nil {
			b.Fatal(err)
		}
		outputs[1] = append(outputs[1], objs...)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, objs := range outputs {
		wg.Go(func() {
			for _, o := range objs {
				u, err := apply.ToUnstructured(o, c.Scheme())
				if err != nil {
					b.Error(err)
					return
				}
				u.SetLabels(ownership.Labels("Bench", ns, o.GetName()))
				if err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("meshplane"), client.ForceOwnership); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// controllers runs the manager, creates the objects, waits until all are
// Ready at their generation, then triggers a no-op resync of all of them
// and counts the writes it sends.
func controllers(b *testing.B, cfg *rest.Config, c client.Client, ns string) (time.Duration, int64, int64) {
	// The manager's clients count their writes, Events apart.
	counted, writes, events := testenv.CountRequests(cfg)
	o := testenv.ManagerOptions{}
	o.Options.SyncPeriod = 10 * time.Hour
	mgr := testenv.StartManager(b, counted, o, trafficsplit.Setup, zerotrustpolicy.Setup)
	if !mgr.GetCache().WaitForCacheSync(context.Background()) {
		b.Fatal("cache did not sync")
	}

	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if err := c.Create(context.Background(), split(ns, i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			if err := c.Create(context.Background(), policy(ns, i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	wg.Wait()
	waitAllReady(b, c, ns)
	elapsed := time.Since(start)
	if writes.Count() == 0 {
		b.Fatal("the write counter saw no write while the controllers applied the outputs")
	}

	// No-op resync: a namespace label change makes both controllers
	// reconcile every object of the namespace; nothing changed, so nothing
	// may be written.
	time.Sleep(2 * time.Second)
	before := reconciles()
	w0, e0 := writes.Count(), events.Count()
	nsObj := &corev1.Namespace{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: ns}, nsObj); err != nil {
		b.Fatal(err)
	}
	nsObj.Labels["bench.meshplane.io/resync"] = "1"
	if err := c.Update(context.Background(), nsObj); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for reconciles()-before < float64(2*n) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := reconciles() - before; got < float64(2*n) {
		b.Fatalf("resync reconciled %v of %d objects", got, 2*n)
	}
	time.Sleep(time.Second)
	return elapsed, int64(writes.Count() - w0), int64(events.Count() - e0)
}

func waitAllReady(b *testing.B, c client.Client, ns string) {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		var tss meshv1alpha1.TrafficSplitList
		var zts meshv1alpha1.ZeroTrustPolicyList
		if err := c.List(context.Background(), &tss, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		if err := c.List(context.Background(), &zts, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		ready := 0
		for i := range tss.Items {
			o := &tss.Items[i]
			if status.IsTrue(&o.Status.CommonStatus, meshv1alpha1.ReadyCondition) && o.Status.ObservedGeneration == o.Generation {
				ready++
			}
		}
		for i := range zts.Items {
			o := &zts.Items[i]
			if status.IsTrue(&o.Status.CommonStatus, meshv1alpha1.ReadyCondition) && o.Status.ObservedGeneration == o.Generation {
				ready++
			}
		}
		if ready == 2*n {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.Fatal("not all objects became Ready")
}
