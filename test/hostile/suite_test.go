package hostile

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// floor is the least number of cases the promise issue asks for.
const floor = 150

// isolatedAtOnce is how many isolated cases (each with its own API
// servers and manager) run at once.
const isolatedAtOnce = 3

// TestHostile runs every registered case, in parallel, each as the subtest
// <Kind>/<Mesh>/<Category>/<Name>.
func TestHostile(t *testing.T) {
	mgr := shared(t)
	registryMu.Lock()
	all := slices.Clone(cases)
	registryMu.Unlock()
	slices.SortFunc(all, func(a, b Case) int { return strings.Compare(a.path(), b.path()) })
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.path()] {
			t.Fatalf("two cases named %s", c.path())
		}
		seen[c.path()] = true
	}
	t.Run("cases", func(t *testing.T) {
		for _, c := range all {
			if c.Isolated {
				continue
			}
			t.Run(c.path(), func(t *testing.T) {
				t.Parallel()
				c.Run(newH(t, mgr, false))
			})
		}
	})
	// Isolated cases start API servers and managers of their own, after
	// the shared ones: isolatedAtOnce at a time (one at a time, they took
	// most of the package's 14 minutes in CI). Their managers share the
	// Helm cache directory the shared manager's start set (testenv).
	t.Run("isolated", func(t *testing.T) {
		slots := make(chan struct{}, isolatedAtOnce)
		for _, c := range all {
			if c.Isolated {
				t.Run(c.path(), func(t *testing.T) {
					t.Parallel()
					slots <- struct{}{}
					t.Cleanup(func() { <-slots }) // after the case's servers stop
					c.Run(newH(t, mgr, true))
				})
			}
		}
	})
}

// TestCaseCount prints the cases by category and kind and fails below the
// floor.
func TestCaseCount(t *testing.T) {
	registryMu.Lock()
	defer registryMu.Unlock()
	byCategory, byKind, byMesh := map[string]int{}, map[string]int{}, map[Mesh]int{}
	for _, c := range cases {
		byCategory[c.Category]++
		byKind[c.Kind]++
		byMesh[c.Mesh]++
	}
	for _, k := range slices.Sorted(maps.Keys(byCategory)) {
		t.Logf("category %-16s %3d", k, byCategory[k])
	}
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		t.Logf("kind     %-16s %3d", k, byKind[k])
	}
	for _, k := range slices.Sorted(maps.Keys(byMesh)) {
		t.Logf("mesh     %-16s %3d", k, byMesh[k])
	}
	t.Logf("total %d cases", len(cases))
	if len(cases) < floor {
		t.Errorf("%d hostile cases; the suite promises at least %d", len(cases), floor)
	}
}

// Controls make a known-good object of a kind on a mesh in a fresh
// namespace and wait until it is Ready: the proof that one bad object
// stopped nothing else. Areas add theirs with RegisterControl.
var (
	controlsMu sync.Mutex
	controls   = map[string]func(h *H, m Mesh){}
)

// RegisterControl sets the control of kind; call it from an init function.
func RegisterControl(kind string, f func(h *H, m Mesh)) {
	controlsMu.Lock()
	defer controlsMu.Unlock()
	controls[kind] = f
}

// Control asserts a fresh, valid kind on m still becomes Ready.
func (h *H) Control(kind string, m Mesh) {
	h.Helper()
	controlsMu.Lock()
	f := controls[kind]
	controlsMu.Unlock()
	if f == nil {
		h.Fatalf("no control registered for %s", kind)
	}
	f(h, m)
}

func init() {
	RegisterControl("TrafficSplit", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		h.Service(ns, "web")
		h.Service(ns, "web-v1")
		h.Service(ns, "web-v2")
		ts := GoodTrafficSplit(ns, "control", m)
		h.Create(ts)
		h.Ready(ts)
	})
	RegisterControl("ZeroTrustPolicy", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		p := GoodZeroTrustPolicy(ns, "control", m)
		h.Create(p)
		h.Ready(p)
	})
	Register(Case{Category: "harness", Kind: "TrafficSplit", Mesh: AnyMesh, Name: "controls reconcile on every mesh",
		Run: func(h *H) {
			for _, m := range Meshes {
				h.Control("TrafficSplit", m)
				h.Control("ZeroTrustPolicy", m)
			}
		}})
}

// GoodTrafficSplit is a valid 90/10 split of Service web between web-v1 and
// web-v2 in ns (create the three Services with h.Service).
func GoodTrafficSplit(ns, name string, m Mesh) *meshv1alpha1.TrafficSplit {
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
	ts.Spec.Provider = Provider(m)
	return ts
}

// GoodZeroTrustPolicy is a valid L4 policy in ns: workloads of ns accept
// port 8080 from service account frontend.
func GoodZeroTrustPolicy(ns, name string, m Mesh) *meshv1alpha1.ZeroTrustPolicy {
	p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
			From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}},
		}}}}
	p.Spec.Provider = Provider(m)
	if m == Cilium {
		// Strict on Cilium needs a MeshInstall with mutual authentication
		// and encryption, which the shared cluster cannot have (a Cilium
		// MeshInstall claims every namespace); Permissive is accepted.
		p.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
	}
	return p
}
