package meshinstall

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestConcernsWorkload(t *testing.T) {
	ready := meshv1alpha1.MeshInstallStatus{Namespace: "istio-system",
		Waypoints: []meshv1alpha1.WaypointStatus{{Namespace: "shop", Name: "waypoint"}}}
	for _, tc := range []struct {
		name          string
		st            meshv1alpha1.MeshInstallStatus
		ns, releaseNS string
		want          bool
	}{
		{"its control-plane namespace", ready, "istio-system", "", true},
		{"a workload of its Helm release elsewhere", ready, "kube-system", "istio-system", true},
		{"a namespace with its waypoint", ready, "shop", "", true},
		{"an unrelated namespace", ready, "billing", "", false},
		{"another release's workload", ready, "billing", "linkerd", false},
		{"not reconciled yet", meshv1alpha1.MeshInstallStatus{}, "billing", "", true},
		{"an upgrade migrating", meshv1alpha1.MeshInstallStatus{Namespace: "istio-system",
			Upgrade: &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeMigrating}}, "billing", "", true},
		{"a completed upgrade", meshv1alpha1.MeshInstallStatus{Namespace: "istio-system",
			Upgrade: &meshv1alpha1.UpgradeStatus{Phase: meshv1alpha1.UpgradeCompleted}}, "billing", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi := &meshv1alpha1.MeshInstall{Status: tc.st}
			if got := concernsWorkload(mi, tc.ns, tc.releaseNS); got != tc.want {
				t.Fatalf("concernsWorkload = %v, want %v", got, tc.want)
			}
		})
	}
}
