// Package canary benchmarks the Canary controller on envtest: n Canaries
// analysed every second against one fake Prometheus, held at 50% by a
// confirm-promotion gate, then all failing at once (threshold 1).
// It reports, per Canary, the time from the metrics server's failing
// answer to the route read back from the API server (a watch) with canary
// weight 0 — median and worst — and the time until all are Initialized.
// Run with make bench.
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
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	canaryctl "github.com/meshplane/meshplane/controllers/canary"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeprom"
	"github.com/meshplane/meshplane/test/testenv"
)

func init() { ctrl.SetLogger(logr.Discard()) }

var n = envInt("MESHPLANE_BENCH_CANARIES", 100)

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
// its spec rolled out and Available.
func rollout(ctx context.Context, c client.Client) {
	for ctx.Err() == nil {
		var list appsv1.DeploymentList
		if c.List(ctx, &list, client.InNamespace(ns)) == nil {
			for i := range list.Items {
				d := &list.Items[i]
				want := *d.Spec.Replicas
				if d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == want && d.Status.AvailableReplicas == want {
					continue
				}
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want, ReadyReplicas: want, AvailableReplicas: want}
				_ = c.Status().Update(ctx, d)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func BenchmarkCanaryRollback(b *testing.B) {
	cfg := cluster.UseEnvtest(b, cluster.EnvtestOptions{})
	c := testenv.StartManager(b, cfg, testenv.ManagerOptions{}, canaryctl.Setup).Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rollout(ctx, c)
	dc := dynamic.NewForConfigOrDie(cfg)

	prom := fakeprom.Start(b)
	prom.SetDefault(1) // 1 = healthy
	rec := &answers{at: map[string][]time.Time{}}
	u, _ := url.Parse(prom.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		q := form.Get("query") + r.URL.Query().Get("query")
		rp.ServeHTTP(w, r)
		if m := targetRE.FindStringSubmatch(q); m != nil {
			rec.mu.Lock()
			rec.at[m[1]] = append(rec.at[m[1]], time.Now())
			rec.mu.Unlock()
		}
	}))
	defer proxy.Close()
	// confirm-promotion holds every canary at its last step (50%).
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "hold", http.StatusForbidden) }))
	defer hold.Close()

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}); err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("app-%03d", i)
		names[i] = name
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
			Analysis: meshv1alpha1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1,
				StepWeights:   []int32{10, 20, 30, 40, 50},
				MetricsServer: &meshv1alpha1.MetricsServer{Address: proxy.URL},
				Webhooks:      []meshv1alpha1.CanaryWebhook{{Name: "hold", Type: "confirm-promotion", URL: hold.URL}},
				Metrics: []meshv1alpha1.CanaryMetric{{Name: "errors", Query: `errors{target="{{ target }}"}`,
					ThresholdRange: meshv1alpha1.ThresholdRange{Min: &max}}}}}}
		for _, o := range []client.Object{d, cn} {
			if err := c.Create(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	}
	start := time.Now()
	waitAll(b, c, "Initialized", func(cn *meshv1alpha1.Canary) bool { return cn.Status.Phase == meshv1alpha1.CanaryPhaseInitialized })
	initialized := time.Since(start)
	for _, name := range names {
		setImage(b, c, name, "app:2")
	}
	waitAll(b, c, "WaitingPromotion", func(cn *meshv1alpha1.Canary) bool {
		return cn.Status.Phase == meshv1alpha1.CanaryPhaseWaitingPromotion && cn.Status.CanaryWeight == 50
	})

	w, err := dc.Resource(schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}).Namespace(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	routeReaders := providers.Registry()
	b.ResetTimer()
	for range b.N {
		failAt := time.Now()
		prom.SetDefault(0) // below min 0.5: every check fails; threshold 1
		zero := map[string]time.Time{}
		deadline := time.After(2 * time.Minute)
		for len(zero) < n {
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
				b.Fatalf("%d of %d routes at weight 0 after 2 minutes", len(zero), n)
			}
		}
		var lat []time.Duration
		for name, z := range zero {
			last := rec.lastBefore(name, z)
			if last.Before(failAt) {
				b.Fatalf("%s: weight 0 before any failing answer", name)
			}
			lat = append(lat, z.Sub(last))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(n), "canaries")
		b.ReportMetric(initialized.Seconds(), "initialized-s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "fail-to-weight0-p50-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "fail-to-weight0-max-ms")
	}
}

func waitAll(b *testing.B, c client.Client, what string, ok func(*meshv1alpha1.Canary) bool) {
	b.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list meshv1alpha1.CanaryList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
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
