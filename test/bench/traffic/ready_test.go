package traffic

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
)

// readyTracker watches the benchmark's TrafficSplits and ZeroTrustPolicies
// (an informer: no polling List of thousands of objects) and knows which
// are Ready at their current generation, and how long a spec change took to
// become Ready.
type readyTracker struct {
	mu        sync.Mutex
	readyGen  map[string]int64 // key -> generation observed Ready
	ready     int
	pending   map[string]pendingChange
	latencies []time.Duration
	changed   chan struct{}
}

type pendingChange struct {
	gen   int64
	since time.Time
}

func trackReady(b *testing.B, cfg *rest.Config, ns string) *readyTracker {
	t := &readyTracker{readyGen: map[string]int64{}, pending: map[string]pendingChange{}, changed: make(chan struct{}, 1)}
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme.New(), DefaultNamespaces: map[string]cache.Config{ns: {}},
		DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	for _, obj := range []client.Object{&meshv1alpha1.TrafficSplit{}, &meshv1alpha1.ZeroTrustPolicy{}} {
		inf, err := ca.GetInformer(ctx, obj)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    t.observe,
			UpdateFunc: func(_, o any) { t.observe(o) },
		}); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		b.Fatal("the benchmark's cache did not sync")
	}
	return t
}

func (t *readyTracker) observe(o any) {
	var key string
	var gen int64
	var ok bool
	switch v := o.(type) {
	case *meshv1alpha1.TrafficSplit:
		key, gen = "TrafficSplit/"+v.Name, v.Generation
		ok = v.Status.ObservedGeneration == gen && status.IsTrue(&v.Status.CommonStatus, meshv1alpha1.ReadyCondition)
	case *meshv1alpha1.ZeroTrustPolicy:
		key, gen = "ZeroTrustPolicy/"+v.Name, v.Generation
		ok = v.Status.ObservedGeneration == gen && status.IsTrue(&v.Status.CommonStatus, meshv1alpha1.ReadyCondition)
	default:
		return
	}
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.readyGen[key]; !seen {
		t.ready++
	}
	if gen > t.readyGen[key] {
		t.readyGen[key] = gen
	}
	if p, waiting := t.pending[key]; waiting && gen >= p.gen {
		t.latencies = append(t.latencies, time.Since(p.since))
		delete(t.pending, key)
	}
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// expect records that key's spec changed at since to generation gen.
func (t *readyTracker) expect(key string, gen int64, since time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.readyGen[key] >= gen {
		t.latencies = append(t.latencies, time.Since(since))
		return
	}
	if p, waiting := t.pending[key]; waiting {
		since = p.since // the earlier change waits for the later generation: counted from the first
	}
	t.pending[key] = pendingChange{gen: gen, since: since}
}

// waitReady waits until want objects have been Ready at their generation.
func (t *readyTracker) waitReady(b *testing.B, want int, timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		t.mu.Lock()
		n := t.ready
		t.mu.Unlock()
		if n >= want {
			return
		}
		select {
		case <-t.changed:
		case <-deadline:
			b.Fatalf("%d of %d objects Ready after %s", n, want, timeout)
		}
	}
}

// waitChanges waits until no change is pending (or timeout) and returns
// the latencies so far and how many changes never became Ready.
func (t *readyTracker) waitChanges(timeout time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		left := len(t.pending)
		lat := append([]time.Duration(nil), t.latencies...)
		t.mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			return lat, left
		}
		time.Sleep(50 * time.Millisecond)
	}
}
