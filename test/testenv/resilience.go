package testenv

import (
	"context"
	"slices"
	"sync"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/scheme"
)

// RouteWatch follows the Istio VirtualServices of one namespace for one
// host from a watch, in the API server's order, and records the most that
// existed at once: what a mesh watching the API server could observe.
type RouteWatch struct {
	mu   sync.Mutex
	live map[string]bool
	max  int
	seen []string
}

// WatchRoutes starts a RouteWatch on namespace ns for host; it stops with
// the test.
func WatchRoutes(t testing.TB, cfg *rest.Config, ns, host string) *RouteWatch {
	t.Helper()
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Watch(ctx, &istionetworking.VirtualServiceList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	rw := &RouteWatch{live: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			vs, ok := ev.Object.(*istionetworking.VirtualService)
			if !ok {
				continue
			}
			rw.observe(ev.Type, vs, host)
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return rw
}

func (rw *RouteWatch) observe(typ watch.EventType, vs *istionetworking.VirtualService, host string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	switch {
	case typ == watch.Deleted || !slices.Contains(vs.Spec.Hosts, host):
		delete(rw.live, vs.Name)
	case typ == watch.Added || typ == watch.Modified:
		if !rw.live[vs.Name] {
			rw.seen = append(rw.seen, vs.Name)
		}
		rw.live[vs.Name] = true
	}
	rw.max = max(rw.max, len(rw.live))
}

// Max returns the most VirtualServices for the host that existed at once,
// and the names in the order they appeared.
func (rw *RouteWatch) Max() (int, []string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.max, slices.Clone(rw.seen)
}
