package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/setup"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// wire is the whole operator's connection to the API server: a transport
// wrapper on the manager's rest.Config. At its moment it kills the
// operator (every later write fails, as if the process were gone) or
// pauses the API server and lets the write through once it answers.
type wire struct {
	// before matches a write about to be sent; after a write the API
	// server accepted, with its response body.
	before func(req *http.Request) bool
	after  func(req *http.Request, body []byte) bool
	// pause, when set, is called at the moment instead of dying.
	pause func()
	dead  atomic.Bool
	fired chan struct{}
	once  sync.Once
	mu    sync.Mutex
}

func (w *wire) fire(kill bool) {
	w.once.Do(func() {
		if kill {
			w.dead.Store(true)
		}
		close(w.fired)
	})
}

func (w *wire) RoundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		return next.RoundTrip(req)
	}
	if w.dead.Load() {
		return nil, errKilled
	}
	w.mu.Lock()
	hit := w.before != nil && w.before(req)
	w.mu.Unlock()
	if hit {
		if w.pause == nil {
			w.fire(true)
			return nil, errKilled
		}
		w.once.Do(func() { close(w.fired); w.pause() })
	}
	resp, err := next.RoundTrip(req)
	if err != nil || w.after == nil || resp.StatusCode/100 != 2 {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, err
	}
	w.mu.Lock()
	hit = w.after(req, body)
	w.mu.Unlock()
	if hit {
		w.fire(true)
	}
	return resp, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// config is cfg with every request going through w.
func (w *wire) config(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { return w.RoundTrip(next, r) })
	})
	return c
}

// startOperator runs, until the (sub)test ends, a manager with every
// controller whose connection goes through w.
func startOperator(t *testing.T, cfg *rest.Config, w *wire) {
	t.Helper()
	o := testenv.ManagerOptions{}
	o.Options.SyncPeriod = 10 * time.Minute
	testenv.StartManager(t, w.config(cfg), o, setup.All)
}

// restartOf reports the namespace of a workload restart in the fault
// namespaces (a PATCH of a Deployment there).
func restartOf(req *http.Request) (string, bool) {
	// /apis/apps/v1/namespaces/<ns>/deployments/<name>
	p := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if req.Method != http.MethodPatch || len(p) != 7 || p[3] != "namespaces" || p[5] != "deployments" || !strings.HasPrefix(p[4], "fx-") {
		return "", false
	}
	return p[4], true
}

// nthRestartedNamespace matches the first restart in the n-th distinct
// namespace restarted.
func nthRestartedNamespace(n int) func(*http.Request) bool {
	seen := map[string]bool{}
	return func(req *http.Request) bool {
		ns, ok := restartOf(req)
		if !ok || seen[ns] {
			return false
		}
		seen[ns] = true
		return len(seen) == n
	}
}

// timeline is every MeshInstall batch record, namespace relabel and
// Deployment pod-template change in the fault namespaces, as the API
// server ordered them (resourceVersion).
type timeline struct {
	mu     sync.Mutex
	events []tlEvent
}

type tlEvent struct {
	rv    uint64
	ns    string   // relabel or restart
	value string   // the new revision label or data-plane stamp
	batch []string // a MeshInstall status: its current batch
	isMI  bool
}

// watchTimeline watches from now until the test ends.
func watchTimeline(t *testing.T, cfg *rest.Config) *timeline {
	t.Helper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	tl := &timeline{}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	lastNS, lastDP := map[string]string{}, map[string]string{}
	follow := func(list client.ObjectList, seed func(), on func(obj client.Object)) {
		if err := wc.List(ctx, list); err != nil {
			t.Fatal(err)
		}
		rv := list.(metav1.ListInterface).GetResourceVersion()
		// The values before the first case are not changes.
		seed()
		go func() {
			for {
				wi, err := wc.Watch(ctx, list, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
				if err != nil {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
						continue
					}
				}
				func() {
					defer wi.Stop()
					for {
						select {
						case <-stop:
							return
						case ev, ok := <-wi.ResultChan():
							if !ok {
								return
							}
							obj, isObj := ev.Object.(client.Object)
							if !isObj {
								continue
							}
							rv = obj.GetResourceVersion()
							if ev.Type == watch.Added || ev.Type == watch.Modified {
								on(obj)
							}
						}
					}
				}()
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	var nsList corev1.NamespaceList
	var depList appsv1.DeploymentList
	add := func(e tlEvent, rv string) {
		e.rv, _ = strconv.ParseUint(rv, 10, 64)
		tl.mu.Lock()
		tl.events = append(tl.events, e)
		tl.mu.Unlock()
	}
	follow(&meshv1alpha1.MeshInstallList{}, func() {}, func(o client.Object) {
		if mi := o.(*meshv1alpha1.MeshInstall); mi.Status.Upgrade != nil {
			add(tlEvent{isMI: true, batch: mi.Status.Upgrade.CurrentBatch}, mi.ResourceVersion)
		}
	})
	follow(&nsList, func() {
		for _, n := range nsList.Items {
			lastNS[n.Name] = n.Labels["istio.io/rev"]
		}
	}, func(o client.Object) {
		if !strings.HasPrefix(o.GetName(), "fx-") {
			return
		}
		v := o.GetLabels()["istio.io/rev"]
		tl.mu.Lock()
		changed := lastNS[o.GetName()] != v
		lastNS[o.GetName()] = v
		tl.mu.Unlock()
		if changed {
			add(tlEvent{ns: o.GetName(), value: v}, o.GetResourceVersion())
		}
	})
	follow(&depList, func() {
		for _, d := range depList.Items {
			lastDP[d.Namespace+"/"+d.Name] = d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation]
		}
	}, func(o client.Object) {
		if !strings.HasPrefix(o.GetNamespace(), "fx-") {
			return
		}
		v := o.(*appsv1.Deployment).Spec.Template.Annotations[upgrade.DataPlaneAnnotation]
		key := o.GetNamespace() + "/" + o.GetName()
		tl.mu.Lock()
		changed := lastDP[key] != v
		lastDP[key] = v
		tl.mu.Unlock()
		if changed {
			add(tlEvent{ns: o.GetNamespace(), value: "dp=" + v}, o.GetResourceVersion())
		}
	})
	return tl
}

// check replays the events after rv in the API server's order: every
// relabel and restart is of a namespace in the batch recorded before it
// and no record holds more than batchSize namespaces (so never more than
// batchSize are in flight). It returns the restarts per namespace. (The
// attempt stamp has a one-second resolution: two batches started in the
// same second share it, so it does not tell batches apart.)
func (tl *timeline) check(t *testing.T, from uint64, rev string, batchSize int) map[string]int {
	t.Helper()
	tl.mu.Lock()
	evs := slices.Clone(tl.events)
	tl.mu.Unlock()
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].rv < evs[j].rv })
	var current []string
	restarts := map[string]int{}
	for _, e := range evs {
		if e.rv <= from {
			continue
		}
		switch {
		case e.isMI:
			if len(e.batch) > batchSize {
				t.Errorf("rv %d: batch %v recorded, more than batchSize %d", e.rv, e.batch, batchSize)
			}
			current = e.batch
		case strings.HasPrefix(e.value, "dp="+rev+"@"):
			restarts[e.ns]++
			if !slices.Contains(current, e.ns) {
				t.Errorf("rv %d: %s restarted (%s) outside the recorded batch %v", e.rv, e.ns, strings.TrimPrefix(e.value, "dp="), current)
			}
		case e.value == rev:
			if !slices.Contains(current, e.ns) {
				t.Errorf("rv %d: %s relabelled to %s outside the recorded batch %v", e.rv, e.ns, rev, current)
			}
		default:
			t.Errorf("rv %d: unexpected change of %s to %q during the upgrade to %s", e.rv, e.ns, e.value, rev)
		}
	}
	return restarts
}

func (tl *timeline) last() uint64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var m uint64
	for _, e := range tl.events {
		m = max(m, e.rv)
	}
	return m
}

// atKill checks the state the killed operator left: restarted namespaces
// on rev, and how many of them are in the batch recorded in status (of
// batchSize 2).
func atKill(t *testing.T, c client.Client, nss []string, rev string, restarted, inBatch int) {
	t.Helper()
	time.Sleep(500 * time.Millisecond) // a write in flight would land by now
	mi, err := getMI(c, "istio")
	if err != nil || mi.Status.Upgrade == nil {
		t.Fatalf("MeshInstall at the kill: %v", err)
	}
	batch := mi.Status.Upgrade.CurrentBatch
	var done, doneInBatch []string
	for _, ns := range nss {
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "d-0"}, &d); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], rev+"@") {
			done = append(done, ns)
			if slices.Contains(batch, ns) {
				doneInBatch = append(doneInBatch, ns)
			}
		}
	}
	if len(batch) != 2 || len(done) != restarted || len(doneInBatch) != inBatch {
		t.Fatalf("at the kill: recorded batch %v, restarted %v (%v of the batch); want a batch of 2, %d restarted, %d of the batch",
			batch, done, doneInBatch, restarted, inBatch)
	}
	t.Logf("at the kill: recorded batch %v, restarted %v", batch, done)
}

// generations returns each fault Deployment's generation.
func generations(t *testing.T, c client.Client, nss []string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, ns := range nss {
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "d-0"}, &d); err != nil {
			t.Fatal(err)
		}
		out[ns] = d.Generation
	}
	return out
}

// TestUpgradeBatchesUnderFaults runs three RevisionBased upgrades of 6
// namespaces × 1 Deployment in batches of 2 on the simulated cluster, each
// with a fault in its second batch: the operator killed right after the
// batch is recorded, killed after one of its two restarts, and the API
// server paused (SIGSTOP 3 s) at a restart. Each time the upgrade
// completes, every Deployment is restarted exactly once, and every relabel
// and restart is of a namespace in the batch recorded before it, never
// more than batchSize at once.
func TestUpgradeBatchesUnderFaults(t *testing.T) {
	parallel(t)
	const batchSize = 2
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{NoThirdParty: true}})
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1", "1.29.0", "1.30.0", "1.31.0")
	repo := chartrepo.Serve(t, dir)
	c := testenv.NewClient(t, sim.Config)

	var nss []string
	for i := range 6 {
		nss = append(nss, fmt.Sprintf("fx-%02d", i))
	}
	t.Run("install", func(t *testing.T) {
		harness.StartManager(t, sim.Config)
		values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
		mi := &meshv1alpha1.MeshInstall{
			ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Spec: meshv1alpha1.MeshInstallSpec{
				Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
				Chart:  &meshv1alpha1.ChartSource{Repository: repo.URL},
				Values: &apiextensionsv1.JSON{Raw: []byte(values)},
				Upgrade: &meshv1alpha1.UpgradeSpec{
					Strategy:          meshv1alpha1.UpgradeRevisionBased,
					RevisionRetention: &metav1.Duration{Duration: time.Second},
					Rollout:           &meshv1alpha1.WorkloadRolloutPlan{BatchSize: batchSize, HealthTimeout: &metav1.Duration{Duration: 60 * time.Second}},
				},
			},
		}
		if err := c.Create(ctx, mi); err != nil {
			t.Fatal(err)
		}
		waitMI(t, c, "istio", 60*time.Second, "Ready on 1.28.1", ready)
		makeApps(t, c, nss, map[string]string{"istio.io/rev": "1-28-1"}, 1)
		harness.Eventually(t, 60*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	})
	if t.Failed() {
		return
	}
	tl := watchTimeline(t, sim.Config)

	for _, tc := range []struct {
		name, version, rev string
		wire               func() *wire
		pause              bool
		// restartedAtKill is how many namespaces the killed operator left
		// restarted, and inBatch how many of them are in the batch it
		// left recorded.
		restartedAtKill, inBatch int
	}{
		{name: "operator killed after the second batch is recorded, before its restarts", version: "1.29.0", rev: "1-29-0",
			restartedAtKill: 2, inBatch: 0,
			wire: func() *wire {
				batches := map[string]bool{}
				return &wire{after: func(req *http.Request, body []byte) bool {
					if req.Method != http.MethodPatch || !strings.HasSuffix(req.URL.Path, "/meshinstalls/istio/status") {
						return false
					}
					var mi meshv1alpha1.MeshInstall
					if json.Unmarshal(body, &mi) != nil || mi.Status.Upgrade == nil || len(mi.Status.Upgrade.CurrentBatch) == 0 {
						return false
					}
					batches[strings.Join(mi.Status.Upgrade.CurrentBatch, ",")] = true
					return len(batches) == 2
				}}
			}},
		{name: "operator killed after one of the second batch's two restarts", version: "1.30.0", rev: "1-30-0",
			restartedAtKill: 3, inBatch: 1,
			wire: func() *wire {
				third := nthRestartedNamespace(3)
				return &wire{after: func(req *http.Request, _ []byte) bool { return third(req) }}
			}},
		{name: "API server paused at the second batch's first restart", version: "1.31.0", rev: "1-31-0", pause: true,
			wire: func() *wire { return &wire{before: nthRestartedNamespace(3)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			w := tc.wire()
			w.fired = make(chan struct{})
			if tc.pause {
				w.pause = func() {
					if err := sim.Pause(cluster.ComponentKubeAPIServer); err != nil {
						t.Error(err)
						return
					}
					go func() {
						time.Sleep(3 * time.Second)
						if err := sim.Resume(cluster.ComponentKubeAPIServer); err != nil {
							t.Error(err)
						}
					}()
				}
			}
			gens := generations(t, c, nss)
			from := tl.last()
			upgraded := func(mi *meshv1alpha1.MeshInstall) bool {
				return ready(mi) && mi.Status.ActiveRevision == tc.rev && mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeCompleted
			}
			t.Run("first operator", func(t *testing.T) {
				startOperator(t, sim.Config, w)
				setVersion(t, c, tc.version, nil)
				select {
				case <-w.fired:
				case <-time.After(60 * time.Second):
					got, _ := getMI(c, "istio")
					t.Fatalf("the moment never came: %s", describe(got))
				}
				if tc.pause {
					waitMI(t, c, "istio", 60*time.Second, "upgrade to "+tc.version+" completed", upgraded)
					return
				}
				atKill(t, c, nss, tc.rev, tc.restartedAtKill, tc.inBatch)
			})
			if t.Failed() {
				return
			}
			if !tc.pause {
				t.Logf("operator killed after %s", time.Since(start).Round(10*time.Millisecond))
				t.Run("next operator", func(t *testing.T) {
					harness.StartManager(t, sim.Config)
					waitMI(t, c, "istio", 60*time.Second, "upgrade to "+tc.version+" completed", upgraded)
				})
			}
			harness.Eventually(t, 30*time.Second, "every pod on "+tc.rev, func() error {
				if revs := podRevisions(t, c, nss); revs[tc.rev] != len(nss) || len(revs) != 1 {
					return fmt.Errorf("pods per revision: %v", revs)
				}
				return allAvailable(c, nss)
			})
			// Let the watches catch up with the last writes.
			time.Sleep(time.Second)
			after := generations(t, c, nss)
			restarts := tl.check(t, from, tc.rev, batchSize)
			var counts []string
			for _, ns := range nss {
				counts = append(counts, fmt.Sprintf("%s:%d", ns, after[ns]-gens[ns]))
				if after[ns]-gens[ns] != 1 || restarts[ns] != 1 {
					t.Errorf("%s: Deployment rolled out %d times (generation %d → %d; %d pod-template changes), want exactly once",
						ns, after[ns]-gens[ns], gens[ns], after[ns], restarts[ns])
				}
			}
			d := time.Since(start)
			t.Logf("upgrade to %s under the fault done in %s; rollouts per namespace %v", tc.version, d.Round(10*time.Millisecond), counts)
			if d > 90*time.Second {
				t.Errorf("case took %s (bound 90s)", d)
			}
		})
	}
}
