package adoption

import (
	"fmt"
	"slices"

	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// Pending returns the namespaces not yet enrolled, in the given order.
func Pending(e mesh.Enrolment, nss []Namespace) []Namespace {
	var out []Namespace
	for _, ns := range nss {
		if !Enrolled(e, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// NextWave returns the names of the next wave: at most size pending
// namespaces, in the given order, skipping those in exclude (moved back
// and held).
func NextWave(e mesh.Enrolment, nss []Namespace, size int, exclude []string) []string {
	if size < 1 {
		size = 1
	}
	var out []string
	for _, ns := range Pending(e, nss) {
		if len(out) == size {
			break
		}
		if !slices.Contains(exclude, ns.Name) {
			out = append(out, ns.Name)
		}
	}
	return out
}

// Stamp is the upgrade.DataPlaneAnnotation value of a wave's restart: it
// names the adoption, the direction and the wave attempt, so re-applying
// the same attempt is a no-op and a move back restarts again.
func Stamp(owner string, back bool, attempt int64) string {
	if back {
		return fmt.Sprintf("adoption-%s-back@%d", owner, attempt)
	}
	return fmt.Sprintf("adoption-%s@%d", owner, attempt)
}

// Check judges a wave: every namespace enrolled, and, where it restarts
// (restart on and Restarts), every workload restarted onto stamp and Ready
// (upgrade.CheckBatch, kstatus rules).
func Check(e mesh.Enrolment, wave []Namespace, stamp string, restart bool) upgrade.Gate {
	var g upgrade.Gate
	for _, ns := range wave {
		if !Enrolled(e, ns) {
			g.Waiting = append(g.Waiting, ns.Name+": not labelled yet")
			continue
		}
		t := upgrade.Target{DataPlane: stamp, Restart: restart && Restarts(e, ns)}
		sub := upgrade.CheckBatch(t, []upgrade.Namespace{{Name: ns.Name, Workloads: ns.Workloads}})
		g.Waiting = append(g.Waiting, sub.Waiting...)
	}
	slices.Sort(g.Waiting)
	g.Passed = len(g.Waiting) == 0
	return g
}

// ToRestart returns the workloads of ns not yet restarted onto stamp.
func ToRestart(ns Namespace, stamp string) []upgrade.Workload {
	var out []upgrade.Workload
	for _, w := range ns.Workloads {
		if w.DataPlane != stamp {
			out = append(out, w)
		}
	}
	return out
}
