package upgrade

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshplane/meshplane/internal/mesh/istio"
)

// DataPlaneAnnotation is set on workloads' pod templates to restart them
// onto a data plane; its value names the revision (Istio) or version
// (in-place upgrades). Because the value is the target, setting it again is
// a no-op, which makes restarts idempotent and resumable.
const DataPlaneAnnotation = "meshplane.io/data-plane"

// Namespace is what the planner needs to know about one namespace.
type Namespace struct {
	// Name of the namespace.
	Name string
	// Labels of the namespace.
	Labels map[string]string
	// Workloads in the namespace and the DataPlaneAnnotation value of their
	// pod templates ("" when unset).
	Workloads []Workload
	// PodRevisions counts the namespace's running workload pods per
	// istio.io/rev label (the revision that injected them); Istio only.
	PodRevisions map[string]int
}

// Workload is one restartable workload.
type Workload struct {
	// Kind is Deployment, StatefulSet or DaemonSet.
	Kind string
	// Name of the workload.
	Name string
	// DataPlane is its pod template's DataPlaneAnnotation value.
	DataPlane string
	// Ready reports whether it finished rolling out (WorkloadReady).
	Ready bool
	// Message explains a workload that is not ready.
	Message string
}

// Target says where namespaces move.
type Target struct {
	// FromRevision and ToRevision are Istio revisions for a revision-based
	// upgrade; both empty for an in-place upgrade.
	FromRevision, ToRevision string
	// DataPlane is the DataPlaneAnnotation value of a migrated workload. For
	// revision-based upgrades it names the batch attempt, so a retried or
	// reverted batch restarts again.
	DataPlane string
	// PodRevision, when set (revision-based upgrades), is the revision every
	// pod must run: a namespace is migrated when its pods do, whatever their
	// templates say, because pods following a tag move with the tag.
	PodRevision string
	// Restart says whether workloads are restarted (rollout.restartWorkloads).
	Restart bool
}

// Relabel reports whether the namespace selects the old revision explicitly
// (istio.io/rev=<from>), so migrating it means relabelling it. Namespaces
// that follow a tag move when the tag moves and are only restarted.
func (t Target) Relabel(ns Namespace) bool {
	return t.FromRevision != "" && ns.Labels[istio.RevLabel] == t.FromRevision
}

// Migrated reports whether a namespace is on the target: relabelled when
// it selects a revision explicitly, and every workload restarted onto the
// target when restarts are on.
func (t Target) Migrated(ns Namespace) bool {
	if t.ToRevision != "" && t.FromRevision != "" && ns.Labels[istio.RevLabel] == t.FromRevision {
		return false
	}
	if !t.Restart {
		return true
	}
	if t.PodRevision != "" {
		return podsOn(ns, t.PodRevision)
	}
	for _, w := range ns.Workloads {
		if w.DataPlane != t.DataPlane {
			return false
		}
	}
	return true
}

func podsOn(ns Namespace, rev string) bool {
	for r, n := range ns.PodRevisions {
		if r != rev && n > 0 {
			return false
		}
	}
	return true
}

// Pending returns the namespaces not yet migrated, sorted by name.
func Pending(t Target, nss []Namespace) []Namespace {
	var out []Namespace
	for _, ns := range nss {
		if !t.Migrated(ns) {
			out = append(out, ns)
		}
	}
	slices.SortFunc(out, func(a, b Namespace) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NextBatch returns the names of the next batch: at most size pending
// namespaces, in name order.
func NextBatch(t Target, nss []Namespace, size int) []string {
	if size < 1 {
		size = 1
	}
	p := Pending(t, nss)
	if len(p) > size {
		p = p[:size]
	}
	names := make([]string, len(p))
	for i, ns := range p {
		names[i] = ns.Name
	}
	return names
}

// Gate is the health verdict on a batch.
type Gate struct {
	// Passed is true when every workload of the batch runs the target and
	// is ready.
	Passed bool
	// Waiting lists "namespace/kind/name: reason" for the others.
	Waiting []string
}

// CheckBatch judges the namespaces of a batch.
func CheckBatch(t Target, batch []Namespace) Gate {
	var g Gate
	for _, ns := range batch {
		for _, w := range ns.Workloads {
			switch {
			case t.Restart && w.DataPlane != t.DataPlane:
				g.Waiting = append(g.Waiting, ns.Name+"/"+w.Kind+"/"+w.Name+": not restarted yet")
			case !w.Ready:
				g.Waiting = append(g.Waiting, ns.Name+"/"+w.Kind+"/"+w.Name+": "+w.Message)
			}
		}
		if t.PodRevision != "" && t.Restart && !podsOn(ns, t.PodRevision) {
			g.Waiting = append(g.Waiting, fmt.Sprintf("%s: pods per revision %v, want all on %s", ns.Name, ns.PodRevisions, t.PodRevision))
		}
	}
	slices.Sort(g.Waiting)
	g.Passed = len(g.Waiting) == 0
	return g
}
