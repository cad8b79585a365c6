package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeprom"
	"github.com/meshplane/meshplane/test/harness"
)

var (
	vsGVR    = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	routeGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	// routeReaders reads the canary's share of a route (mesh.RouteReader).
	routeReaders = providers.Registry()
)

// promProxy sits in front of the fake Prometheus and records when each
// answer was written, so the test can time what follows a failing answer.
type promProxy struct {
	URL     string
	mu      sync.Mutex
	answers []time.Time
}

func startPromProxy(t *testing.T, target string) *promProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &promProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.ServeHTTP(w, r)
		p.mu.Lock()
		p.answers = append(p.answers, time.Now())
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// lastAnswerBefore returns the last answer written before t.
func (p *promProxy) lastAnswerBefore(t time.Time) (time.Time, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last time.Time
	n := 0
	for _, a := range p.answers {
		if a.Before(t) {
			last = a
			n++
		}
	}
	return last, n
}

func cnDeployment(ns, name, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func cnSpec(name, promURL string) meshv1alpha1.CanarySpec {
	return meshv1alpha1.CanarySpec{
		TargetRef: meshv1alpha1.CanaryTargetReference{Name: name},
		Service:   meshv1alpha1.CanaryService{Port: 8080},
		Strategy:  meshv1alpha1.StrategyCanary,
		Analysis: meshv1alpha1.CanaryAnalysis{
			Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
			StepWeight: ptr.To[int32](50), MaxWeight: ptr.To[int32](100),
			MetricsServer: &meshv1alpha1.MetricsServer{Address: promURL},
			Metrics: []meshv1alpha1.CanaryMetric{
				{Name: "request-success-rate", ThresholdRange: meshv1alpha1.ThresholdRange{Min: ptr.To("99")}},
				{Name: "request-duration", ThresholdRange: meshv1alpha1.ThresholdRange{Max: ptr.To("500")}},
			},
		},
	}
}

func cnCreate(t *testing.T, c client.Client, ns string, nsLabels, nsAnn map[string]string, spec meshv1alpha1.CanarySpec) client.ObjectKey {
	t.Helper()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: nsLabels, Annotations: nsAnn}}); err != nil {
		t.Fatal(err)
	}
	name := spec.TargetRef.Name
	if err := c.Create(ctx, cnDeployment(ns, name, "example.invalid/app:1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	return client.ObjectKey{Namespace: ns, Name: name}
}

func cnGet(c client.Client, key client.ObjectKey) (*meshv1alpha1.Canary, error) {
	cn := &meshv1alpha1.Canary{}
	return cn, c.Get(ctx, key, cn)
}

func cnDescribe(cn *meshv1alpha1.Canary) string {
	s := fmt.Sprintf("phase=%s weight=%d iterations=%d failed=%d message=%q", cn.Status.Phase, cn.Status.CanaryWeight, cn.Status.Iterations, cn.Status.FailedChecks, cn.Status.Message)
	for _, c := range cn.Status.Conditions {
		if c.Status == metav1.ConditionTrue && (c.Type == meshv1alpha1.StalledCondition) {
			s += fmt.Sprintf(" %s=%s(%s: %.200s)", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return s
}

func cnWait(t *testing.T, c client.Client, key client.ObjectKey, timeout time.Duration, what string, ok func(*meshv1alpha1.Canary) bool) *meshv1alpha1.Canary {
	t.Helper()
	var cn *meshv1alpha1.Canary
	harness.Eventually(t, timeout, key.String()+": "+what, func() error {
		var err error
		if cn, err = cnGet(c, key); err != nil {
			return err
		}
		if !ok(cn) {
			return fmt.Errorf("%s", cnDescribe(cn))
		}
		return nil
	})
	return cn
}

func cnPhase(p meshv1alpha1.CanaryPhase) func(*meshv1alpha1.Canary) bool {
	return func(cn *meshv1alpha1.Canary) bool { return cn.Status.Phase == p }
}

// cnNewRevision changes the target's image.
func cnNewRevision(t *testing.T, c client.Client, key client.ObjectKey, image string) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, "update "+key.String(), func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		return c.Update(ctx, d)
	})
}

func cnPrimaryImage(t *testing.T, c client.Client, key client.ObjectKey) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name + "-primary"}, d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// cnRouteWeight reads the route object uncached and returns the canary's
// weight.
func cnRouteWeight(dc dynamic.Interface, gvr schema.GroupVersionResource, key client.ObjectKey) (int64, bool, error) {
	u, err := dc.Resource(gvr).Namespace(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return 0, false, err
	}
	return routeReaders.CanaryShare(u, key.Name+"-canary")
}

// TestCanary delivers canaries end to end on the simulated cluster, with a
// fake Prometheus answering the real query API.
func TestCanary(t *testing.T) {
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{}})
	m := harness.StartManager(t, sim.Config)
	c := m.Client
	dc := dynamic.NewForConfigOrDie(sim.Config)
	prom := fakeprom.Start(t)
	prom.SetDefault(100) // success rate 100%, p99 100ms: every check passes
	istio := map[string]string{"istio-injection": "enabled"}
	linkerd := map[string]string{"linkerd.io/inject": "enabled"}

	t.Run("a passing canary promotes on Istio, Linkerd and Cilium", func(t *testing.T) {
		keys := map[meshv1alpha1.Provider]client.ObjectKey{
			meshv1alpha1.ProviderIstio:   cnCreate(t, c, "cn-istio", istio, nil, cnSpec("web", prom.URL)),
			meshv1alpha1.ProviderLinkerd: cnCreate(t, c, "cn-linkerd", nil, linkerd, cnSpec("web", prom.URL)),
		}
		cilium := cnSpec("web", prom.URL)
		cilium.Provider = meshv1alpha1.ProviderCilium
		keys[meshv1alpha1.ProviderCilium] = cnCreate(t, c, "cn-cilium", nil, nil, cilium)
		start := time.Now()
		for p, key := range keys {
			cn := cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
			if cn.Status.Provider != p {
				t.Fatalf("%s: provider %s", key, cn.Status.Provider)
			}
		}
		t.Logf("three canaries Initialized (primary Available, route to primary) in %s", time.Since(start).Round(10*time.Millisecond))
		start = time.Now()
		for _, key := range keys {
			cnNewRevision(t, c, key, "example.invalid/app:2")
		}
		for p, key := range keys {
			cnWait(t, c, key, 60*time.Second, "Succeeded", cnPhase(meshv1alpha1.CanaryPhaseSucceeded))
			if img := cnPrimaryImage(t, c, key); img != "example.invalid/app:2" {
				t.Fatalf("%s: primary image %s after promotion", p, img)
			}
			gvr := routeGVR
			if p == meshv1alpha1.ProviderIstio {
				gvr = vsGVR
			}
			if w, mirrored, err := cnRouteWeight(dc, gvr, key); err != nil || w != 0 || mirrored {
				t.Fatalf("%s: canary weight %d mirrored %v after promotion (%v)", p, w, mirrored, err)
			}
			tgt := &appsv1.Deployment{}
			if err := c.Get(ctx, key, tgt); err != nil || *tgt.Spec.Replicas != 0 {
				t.Fatalf("%s: canary not scaled to zero (%v)", p, err)
			}
		}
		t.Logf("three canaries (50%% → 100%% → promotion, 1s interval) Succeeded in %s", time.Since(start).Round(10*time.Millisecond))
	})

	t.Run("a failing metric rolls back within threshold intervals, weight 0 within 1s", func(t *testing.T) {
		proxy := startPromProxy(t, prom.URL)
		spec := cnSpec("web", proxy.URL)
		spec.Analysis.StepWeights = []int32{10, 20, 30, 40, 50}
		spec.Analysis.StepWeight, spec.Analysis.MaxWeight = nil, nil
		key := cnCreate(t, c, "cn-fail", istio, nil, spec)
		cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
		cnNewRevision(t, c, key, "example.invalid/app:bad")
		cnWait(t, c, key, 60*time.Second, "weight 20", func(cn *meshv1alpha1.Canary) bool { return cn.Status.CanaryWeight >= 20 })

		// Watch the route from the API server: the first event with weight
		// 0 is the rollback read back.
		w, err := dc.Resource(vsGVR).Namespace(key.Namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + key.Name})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		failAt := time.Now()
		prom.Set("cn-fail", 50) // success rate 50% < 99%: every check fails from now on
		var zeroAt time.Time
		deadline := time.After(30 * time.Second)
	watching:
		for {
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Modified && ev.Type != watch.Added {
					continue
				}
				u := ev.Object.(*unstructured.Unstructured)
				if weight, _, err := routeReaders.CanaryShare(u, "web-canary"); err == nil && weight == 0 {
					zeroAt = time.Now()
					break watching
				}
			case <-deadline:
				t.Fatal("the canary weight did not return to 0 within 30s of the failing metric")
			}
		}
		lastFail, answers := proxy.lastAnswerBefore(zeroAt)
		_, before := proxy.lastAnswerBefore(failAt)
		failing := answers - before
		took := zeroAt.Sub(lastFail)
		t.Logf("failing check → canary weight 0 (route read back from the API server): %s (%d failing answers, 2 metrics × threshold 2; rollback %s after the value turned bad)",
			took.Round(time.Millisecond), failing, zeroAt.Sub(failAt).Round(time.Millisecond))
		if took > time.Second || lastFail.Before(failAt) {
			t.Fatalf("weight 0 came %s after the failing check (want ≤ 1s)", took)
		}
		if failing > 2*2 {
			t.Fatalf("%d failing answers before the rollback, want at most threshold (2) intervals × 2 metrics", failing)
		}
		cn := cnWait(t, c, key, 10*time.Second, "Failed, canary at zero", func(cn *meshv1alpha1.Canary) bool {
			tgt := &appsv1.Deployment{}
			return cn.Status.Phase == meshv1alpha1.CanaryPhaseFailed && c.Get(ctx, key, tgt) == nil && *tgt.Spec.Replicas == 0
		})
		if !strings.Contains(cn.Status.Message, "request-success-rate") || cn.Status.CanaryWeight != 0 || cnPrimaryImage(t, c, key) != "example.invalid/app:1" {
			t.Fatalf("after rollback: %s, primary %s", cnDescribe(cn), cnPrimaryImage(t, c, key))
		}
	})

	t.Run("a blocking confirm-promotion webhook holds the canary", func(t *testing.T) {
		var open atomic.Bool
		var calls atomic.Int32
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if !open.Load() {
				http.Error(w, "change freeze", http.StatusForbidden)
			}
		}))
		defer hook.Close()
		spec := cnSpec("web", prom.URL)
		spec.Analysis.Webhooks = []meshv1alpha1.CanaryWebhook{{Name: "approve", Type: "confirm-promotion", URL: hook.URL}}
		key := cnCreate(t, c, "cn-gate", istio, nil, spec)
		cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
		cnNewRevision(t, c, key, "example.invalid/app:2")
		cnWait(t, c, key, 60*time.Second, "WaitingPromotion", cnPhase(meshv1alpha1.CanaryPhaseWaitingPromotion))
		time.Sleep(3 * time.Second)
		cn, err := cnGet(c, key)
		if err != nil || cn.Status.Phase != meshv1alpha1.CanaryPhaseWaitingPromotion || !strings.Contains(cn.Status.Message, "status 403") ||
			strings.Contains(cn.Status.Message, "change freeze") || // the webhook's body is never copied into status
			cnPrimaryImage(t, c, key) != "example.invalid/app:1" {
			t.Fatalf("not held: %s (%v)", cnDescribe(cn), err)
		}
		t.Logf("held in WaitingPromotion at weight %d after %d gate calls: %s", cn.Status.CanaryWeight, calls.Load(), cn.Status.Message)
		open.Store(true)
		cnWait(t, c, key, 30*time.Second, "Succeeded", cnPhase(meshv1alpha1.CanaryPhaseSucceeded))
		if img := cnPrimaryImage(t, c, key); img != "example.invalid/app:2" {
			t.Fatalf("primary image %s", img)
		}
	})

	t.Run("a new revision mid-analysis restarts it", func(t *testing.T) {
		spec := cnSpec("web", prom.URL)
		spec.Analysis.StepWeights = []int32{20, 40, 60, 80}
		spec.Analysis.StepWeight, spec.Analysis.MaxWeight = nil, ptr.To[int32](80)
		key := cnCreate(t, c, "cn-restart", istio, nil, spec)
		cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
		cnNewRevision(t, c, key, "example.invalid/app:2")
		first := cnWait(t, c, key, 60*time.Second, "weight 40", func(cn *meshv1alpha1.Canary) bool { return cn.Status.CanaryWeight >= 40 })
		cnNewRevision(t, c, key, "example.invalid/app:3")
		restarted := cnWait(t, c, key, 20*time.Second, "restarted", func(cn *meshv1alpha1.Canary) bool {
			return cn.Status.LastAppliedSpec != first.Status.LastAppliedSpec && cn.Status.Iterations <= 1
		})
		t.Logf("restarted: %s", cnDescribe(restarted))
		cnWait(t, c, key, 60*time.Second, "Succeeded", cnPhase(meshv1alpha1.CanaryPhaseSucceeded))
		if img := cnPrimaryImage(t, c, key); img != "example.invalid/app:3" {
			t.Fatalf("primary image %s, want the second revision", img)
		}
	})

	t.Run("blue/green and A/B complete", func(t *testing.T) {
		bg := cnSpec("web", prom.URL)
		bg.Strategy = meshv1alpha1.StrategyBlueGreen
		bg.Analysis.StepWeight, bg.Analysis.MaxWeight, bg.Analysis.Iterations = nil, nil, ptr.To[int32](2)
		ab := cnSpec("web", prom.URL)
		ab.Strategy = meshv1alpha1.StrategyABTesting
		ab.Analysis.StepWeight, ab.Analysis.MaxWeight, ab.Analysis.Iterations = nil, nil, ptr.To[int32](2)
		ab.Analysis.Match = []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-canary", Value: "insider"}}}}
		bgKey := cnCreate(t, c, "cn-bluegreen", istio, nil, bg)
		abKey := cnCreate(t, c, "cn-ab", nil, linkerd, ab)
		for _, key := range []client.ObjectKey{bgKey, abKey} {
			cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
			cnNewRevision(t, c, key, "example.invalid/app:2")
		}
		// During the A/B analysis the cohort rule routes to the canary.
		harness.Eventually(t, 30*time.Second, "A/B cohort rule", func() error {
			u, err := dc.Resource(routeGVR).Namespace(abKey.Namespace).Get(ctx, abKey.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			if len(rules) != 2 || !strings.Contains(fmt.Sprint(rules[0]), "x-canary") || !strings.Contains(fmt.Sprint(rules[0]), "web-canary") {
				return fmt.Errorf("rules: %v", rules)
			}
			return nil
		})
		for _, key := range []client.ObjectKey{bgKey, abKey} {
			cnWait(t, c, key, 60*time.Second, "Succeeded", cnPhase(meshv1alpha1.CanaryPhaseSucceeded))
			if img := cnPrimaryImage(t, c, key); img != "example.invalid/app:2" {
				t.Fatalf("%s: primary image %s", key, img)
			}
		}
	})

	t.Run("the metrics server going away fails checks, not the operator", func(t *testing.T) {
		gone := fakeprom.Start(t)
		gone.SetDefault(100)
		spec := cnSpec("web", gone.URL)
		spec.Analysis.StepWeights = []int32{10, 20, 30, 40, 50}
		spec.Analysis.StepWeight, spec.Analysis.MaxWeight = nil, nil
		key := cnCreate(t, c, "cn-gone", istio, nil, spec)
		cnWait(t, c, key, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
		cnNewRevision(t, c, key, "example.invalid/app:2")
		cnWait(t, c, key, 60*time.Second, "weight 10", func(cn *meshv1alpha1.Canary) bool { return cn.Status.CanaryWeight >= 10 })
		gone.Close()
		cn := cnWait(t, c, key, 30*time.Second, "Failed", cnPhase(meshv1alpha1.CanaryPhaseFailed))
		addr := strings.TrimPrefix(gone.URL, "http://")
		if !strings.Contains(cn.Status.Message, addr) {
			t.Fatalf("message does not name the unreachable server %s: %q", addr, cn.Status.Message)
		}
		t.Logf("rolled back with: %s", cn.Status.Message)
		// The operator keeps running: another canary still progresses.
		other := cnSpec("web", prom.URL)
		other.SkipAnalysis = true
		okKey := cnCreate(t, c, "cn-after", istio, nil, other)
		cnWait(t, c, okKey, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
		cnNewRevision(t, c, okKey, "example.invalid/app:2")
		cnWait(t, c, okKey, 60*time.Second, "Succeeded", cnPhase(meshv1alpha1.CanaryPhaseSucceeded))
	})
}
