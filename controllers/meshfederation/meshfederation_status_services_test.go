package meshfederation

import (
	"errors"
	"fmt"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/status"
)

// TestSetServicesStatus: ServicesConnected of the federation and of each
// member, and the summary, from the members' service federation.
func TestSetServicesStatus(t *testing.T) {
	sf, err := providers.Registry().ServiceFederation("Istio")
	if err != nil {
		t.Fatal(err)
	}
	var cl client.Client = unused{}
	istio := func(name, gateway string, peers ...meshv1alpha1.PeerStatus) *svcMember {
		return &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: name, Provider: "Istio"}, client: cl}, sf: sf,
			fm: mesh.FederationMember{Name: name, Network: name, EastWestGateway: true}, gateway: gateway, gatewayWanted: true, peers: peers}
	}
	linked := func(n string) meshv1alpha1.PeerStatus { return meshv1alpha1.PeerStatus{Name: n, Linked: true} }
	waiting := func(n, why string) meshv1alpha1.PeerStatus { return meshv1alpha1.PeerStatus{Name: n, Message: why} }
	other := &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: "c", Provider: "Linkerd"}, client: cl},
		notFederating: "Meshplane does not federate Linkerd services across clusters (trust is shared)"}
	withUnlinkable := func(s *svcMember, n string) *svcMember {
		s.peers = append(s.peers, waiting(n, "a (Istio) and c (Linkerd) share trust but cannot federate services"))
		s.unlinkable = map[string]bool{n: true}
		return s
	}
	lost := istio("b", "")
	lost.m.fail(errors.New("dial tcp: connection refused"))
	conflicted := istio("b", "")
	conflicted.err = fmt.Errorf("cluster b: %w", &apply.ConflictError{Kind: "Secret", Namespace: "istio-system", Name: "istio-remote-secret-a"})
	for _, tc := range []struct {
		name   string
		svcs   []*svcMember
		want   status.Summary
		fed    string // "Status/Reason: message"
		member map[string]string
	}{
		{name: "connected, with a trust-only pair",
			svcs: []*svcMember{withUnlinkable(istio("a", "127.96.1.1", linked("b")), "c"), istio("b", "127.96.1.2", linked("a")), other},
			fed:  "True/Succeeded: every member reads every peer its mesh federates services with; trust only, no service federation between a/c, b/c",
			member: map[string]string{"a": "True/Succeeded: reads 1 peers; network a",
				"c": "False/UnsupportedFeature: c: Meshplane does not federate Linkerd services across clusters (trust is shared)"}},
		{name: "no gateway address yet",
			svcs: []*svcMember{istio("a", "", linked("b")), istio("b", "127.96.1.2", linked("a"))},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.WaitingReason,
				Message: "services are not connected: a has no east-west gateway address yet (Service istio-system/istio-eastwestgateway has no load-balancer ingress)"},
			fed: "False/Waiting: services are not connected: a has no east-west gateway address yet (Service istio-system/istio-eastwestgateway has no load-balancer ingress)"},
		{name: "peer reader not there yet",
			svcs: []*svcMember{istio("a", "x", waiting("b", "waiting for the reader ServiceAccount istio-system/meshplane-istio-reader in cluster b")), istio("b", "y", linked("a"))},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.WaitingReason,
				Message: "services are not connected: a does not read b: waiting for the reader ServiceAccount istio-system/meshplane-istio-reader in cluster b"},
			fed: "False/Waiting: services are not connected: a does not read b: waiting for the reader ServiceAccount istio-system/meshplane-istio-reader in cluster b"},
		{name: "lost member", svcs: []*svcMember{istio("a", "x", waiting("b", "b does not answer; a keeps the credentials it holds")), lost},
			want:   status.Summary{State: status.Progressing, Reason: meshv1alpha1.WaitingReason},
			member: map[string]string{"b": "False/ClusterUnreachable: b does not answer; what it holds stays in place"}},
		{name: "no member federates services", svcs: []*svcMember{other},
			want: status.Summary{State: status.Stalled, Reason: meshv1alpha1.UnsupportedFeatureReason,
				Message: "spec.services: no member's mesh can federate services with Meshplane (c (Linkerd)); trust is shared, remove spec.services or add Istio members"}},
		{name: "conflict is terminal", svcs: []*svcMember{istio("a", "x", linked("b")), conflicted},
			want: status.Summary{State: status.Stalled, Reason: meshv1alpha1.ConflictReason}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fed := &meshv1alpha1.MeshFederation{Spec: meshv1alpha1.MeshFederationSpec{Services: &meshv1alpha1.ServiceFederationSpec{}}}
			for _, s := range tc.svcs {
				if s.err == nil && s.m.err != nil {
					s.err = s.m.err
				}
			}
			sum, pending := setServicesStatus(fed, result{services: tc.svcs})
			if pending != (tc.want.State != status.Ready) || sum.State != tc.want.State || sum.Reason != tc.want.Reason ||
				(tc.want.Message != "" && sum.Message != tc.want.Message) {
				t.Fatalf("summary %+v (pending %v), want %+v", sum, pending, tc.want)
			}
			if tc.fed != "" {
				c := apimeta.FindStatusCondition(fed.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
				if got := string(c.Status) + "/" + c.Reason + ": " + c.Message; got != tc.fed {
					t.Fatalf("ServicesConnected %q, want %q", got, tc.fed)
				}
			}
			for name, want := range tc.member {
				c := apimeta.FindStatusCondition(memberStatus(fed, name).Conditions, meshv1alpha1.ServicesConnectedCondition)
				if got := string(c.Status) + "/" + c.Reason + ": " + c.Message; got != want {
					t.Fatalf("%s ServicesConnected %q, want %q", name, got, want)
				}
			}
		})
	}
	// Without spec.services the condition goes.
	fed := &meshv1alpha1.MeshFederation{}
	status.Set(&fed.Status.CommonStatus, 1, meshv1alpha1.ServicesConnectedCondition, "True", "Succeeded", "x")
	if _, pending := setServicesStatus(fed, result{}); pending || apimeta.FindStatusCondition(fed.Status.Conditions, meshv1alpha1.ServicesConnectedCondition) != nil {
		t.Fatal("ServicesConnected kept without spec.services")
	}
}
