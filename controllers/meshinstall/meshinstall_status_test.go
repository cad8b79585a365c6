package meshinstall

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

func TestSetStatus(t *testing.T) {
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	upgrading := &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeMigrating, FromVersion: "1.28.1", ToVersion: "1.29.0", MigratedNamespaces: 1, TotalNamespaces: 4}
	done := &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeCompleted, FromVersion: "1.28.1", ToVersion: "1.29.0"}
	for _, tc := range []struct {
		name          string
		upgrade       *meshv1alpha1.UpgradeStatus
		wasUpgrading  bool
		active        string
		waypoints     []meshv1alpha1.WaypointStatus
		out           result
		err           error
		want          status.Summary
		wantUpgrading metav1.ConditionStatus // "" for absent
		wantHeld      bool
	}{
		{name: "installed and healthy", want: status.Summary{Message: "Istio 1.28.1 is installed and healthy"}},
		{name: "active revision named", active: "1-28-1", out: result{requeueAfter: time.Minute},
			want: status.Summary{Message: "Istio 1.28.1 is installed and healthy (active revision 1-28-1)", RequeueAfter: time.Minute}},
		{name: "waypoints counted, unprogrammed ones do not hold Ready", waypoints: []meshv1alpha1.WaypointStatus{
			{Namespace: "shop", Name: "waypoint", Programmed: true}, {Namespace: "cart", Name: "waypoint", Message: "waiting for istiod to program the waypoint"}},
			want: status.Summary{Message: "Istio 1.28.1 is installed and healthy; 1 of 2 waypoints programmed"}},
		{name: "an error is left to Finish", err: errors.New("connection refused"), want: status.Summary{}},
		{name: "a wait is left to Finish", err: outcome.Wait(meshv1alpha1.ProgressingReason, time.Second, "istiod not Available"), want: status.Summary{}},
		{name: "upgrade in flight", upgrade: upgrading, err: outcome.Wait(meshv1alpha1.ProgressingReason, time.Second, "batch"),
			want: status.Summary{}, wantUpgrading: metav1.ConditionTrue},
		{name: "an upgrade in flight is never Ready", upgrade: upgrading, out: result{requeueAfter: time.Second},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.ProgressingReason,
				Message: "upgrade 1.28.1 → 1.29.0: Migrating, 1 of 4 namespaces migrated", RequeueAfter: time.Second}, wantUpgrading: metav1.ConditionTrue},
		{name: "upgrade done clears Upgrading", upgrade: done, wasUpgrading: true,
			want: status.Summary{Message: "Istio 1.28.1 is installed and healthy"}, wantUpgrading: metav1.ConditionFalse},
		{name: "held by a BreakGlass", out: result{phase: phaseHeld, heldBy: bg}, want: status.Summary{State: status.Custom}, wantHeld: true},
		{name: "suspended changes nothing", out: result{phase: phaseSuspended}, want: status.Summary{State: status.Custom}},
		{name: "deleting", out: result{phase: phaseDelete, deleting: "deleting with deletionPolicy Orphan", requeueAfter: time.Second},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.DeletingReason, Message: "deleting with deletionPolicy Orphan", RequeueAfter: time.Second}},
		{name: "deleted without finalizer", out: result{phase: phaseDelete}, want: status.Summary{State: status.Custom}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio", Generation: 3},
				Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1"}}
			mi.Status.InstalledVersion, mi.Status.ActiveRevision, mi.Status.Upgrade = "1.28.1", tc.active, tc.upgrade
			mi.Status.Waypoints = tc.waypoints
			if tc.wasUpgrading {
				status.Set(&mi.Status.CommonStatus, 2, meshv1alpha1.UpgradingCondition, metav1.ConditionTrue, meshv1alpha1.ProgressingReason, "upgrading")
			}
			got := setStatus(mi, tc.out, tc.err)
			if got != tc.want {
				t.Fatalf("summary = %+v, want %+v", got, tc.want)
			}
			c := status.Get(&mi.Status.CommonStatus, meshv1alpha1.UpgradingCondition)
			if (c == nil) != (tc.wantUpgrading == "") || (c != nil && c.Status != tc.wantUpgrading) {
				t.Fatalf("Upgrading = %+v, want %q", c, tc.wantUpgrading)
			}
			if held := status.IsTrue(&mi.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition); held != tc.wantHeld {
				t.Fatalf("BreakGlassActive = %v, want %v", held, tc.wantHeld)
			}
			if tc.wantHeld && mi.Status.ObservedGeneration != 3 {
				t.Fatalf("a hold is current: observedGeneration = %d", mi.Status.ObservedGeneration)
			}
		})
	}
}

// TestPausedUpgradeIsCurrent checks that a pause, the state the spec asks
// for, moves observedGeneration although the MeshInstall stays
// Reconciling.
func TestPausedUpgradeIsCurrent(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio", Generation: 5}}
	err := &outcome.WaitError{Reason: meshv1alpha1.WaitingReason, Message: "paused", Current: true}
	status.Summarize(mi, setStatus(mi, result{}, err), err, meshv1alpha1.ProgressingReason)
	if mi.Status.ObservedGeneration != 5 || !status.IsTrue(&mi.Status.CommonStatus, meshv1alpha1.ReconcilingCondition) {
		t.Fatalf("paused: observedGeneration %d, conditions %+v", mi.Status.ObservedGeneration, mi.Status.Conditions)
	}
}
