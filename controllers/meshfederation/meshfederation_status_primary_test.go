package meshfederation

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

// TestRemoteServicesCondition: a remote's ServicesConnected names its
// primary: Waiting with what it misses while its one peer entry (the
// primary) is not linked, and the primary and its address once it is.
func TestRemoteServicesCondition(t *testing.T) {
	sf, err := providers.Registry().ServiceFederation(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	remote := func(addr, why string) *svcMember {
		return &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: "east", Provider: meshv1alpha1.ProviderIstio, Primary: "west"}, client: unused{}}, sf: sf,
			fm:      mesh.FederationMember{Name: "east", Network: "net-east", EastWestGateway: true, Primary: "west", PrimaryAddress: addr},
			gateway: "127.96.5.2", gatewayWanted: true, remoteWhy: why,
			peers: []meshv1alpha1.PeerStatus{{Name: "west", Primary: true, Linked: why == "", Message: why}}}
	}
	for _, tc := range []struct {
		name, why, addr    string
		ok                 bool
		reason, wantSuffix string
	}{
		{"waiting for the primary's gateway", "waiting for an address of the east-west gateway of primary west", "", false, meshv1alpha1.WaitingReason,
			"east is not controlled by its primary west yet: waiting for an address of the east-west gateway of primary west"},
		{"no MeshInstall", "no MeshInstall installs Istio in sidecar mode in east", "127.96.5.1", false, meshv1alpha1.WaitingReason,
			"east is not controlled by its primary west yet: no MeshInstall installs Istio in sidecar mode in east"},
		{"controlled", "", "127.96.5.1", true, meshv1alpha1.SucceededReason, "controlled by primary west through 127.96.5.1; network net-east"},
	} {
		ok, reason, msg := memberServicesCondition(remote(tc.addr, tc.why))
		if ok != tc.ok || reason != tc.reason || msg != tc.wantSuffix {
			t.Errorf("%s: %v %s %q", tc.name, ok, reason, msg)
		}
	}
	if !servicesPending([]*svcMember{{m: &member{}, sf: sf, settingsWritten: true, fm: mesh.FederationMember{}, gatewayWanted: false}}) {
		t.Error("a member whose settings were written this reconcile is not looked at again")
	}
}
