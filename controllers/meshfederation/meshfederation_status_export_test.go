package meshfederation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

// TestSetExportsStatus: status.exports and ServicesExported from the
// members' exports, imports and links.
func TestSetExportsStatus(t *testing.T) {
	reg := providers.Registry()
	sf, _ := reg.ServiceFederation("Istio")
	se, err := reg.ServiceExporter("Istio")
	if err != nil {
		t.Fatal(err)
	}
	var cl client.Client = unused{}
	cart := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
		Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
	member := func(name string, exports bool, ready bool, gateway string, linked ...string) *svcMember {
		s := &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: name, Provider: "Istio"}, client: cl}, sf: sf,
			fm: mesh.FederationMember{Name: name, Network: name, MeshID: "m"}, gateway: gateway, gatewayWanted: true}
		s.export = memberExport{se: se, imported: map[string]bool{"shop/cart": true}, refused: map[string]string{}, skipped: map[string]string{}}
		if exports {
			s.export.exports = []*corev1.Service{cart}
			s.export.endpoints = map[string]bool{"shop/cart": ready}
		}
		for _, l := range linked {
			s.peers = append(s.peers, meshv1alpha1.PeerStatus{Name: l, Linked: true})
		}
		return s
	}
	for _, tc := range []struct {
		name      string
		svcs      []*svcMember
		reachable bool
		reason    string
		message   string
	}{
		{"linked, with endpoints and gateway: only the scope is missing", []*svcMember{member("a", false, false, "1.1.1.1", "b"), member("b", true, true, "2.2.2.2", "a")},
			true, meshv1alpha1.ScopeNotEnforcedReason, "shop/cart: b: global; services without a ServiceExport are global too"},
		{"no ready endpoint", []*svcMember{member("a", false, false, "1.1.1.1", "b"), member("b", true, false, "2.2.2.2", "a")},
			false, meshv1alpha1.WaitingReason, "shop/cart: no exporter has a ready endpoint (b)"},
		{"an importer does not read the exporter", []*svcMember{member("a", false, false, "1.1.1.1"), member("b", true, true, "2.2.2.2", "a")},
			false, meshv1alpha1.WaitingReason, "shop/cart: not every importer reads an exporter with a ready endpoint (b)"},
		{"the exporter has no gateway address", []*svcMember{member("a", false, false, "1.1.1.1", "b"), member("b", true, true, "", "a")},
			true, meshv1alpha1.WaitingReason, "shop/cart: b has no east-west gateway address yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fed := &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "f", Generation: 2},
				Spec: meshv1alpha1.MeshFederationSpec{Services: &meshv1alpha1.ServiceFederationSpec{}}}
			setExportsStatus(fed, result{services: tc.svcs})
			if len(fed.Status.Exports) != 1 {
				t.Fatalf("exports %+v", fed.Status.Exports)
			}
			es := fed.Status.Exports[0]
			if es.Type != "Headless" || strings.Join(es.ExportedBy, ",") != "b" || strings.Join(es.ImportedBy, ",") != "a,b" || es.Reachable != tc.reachable || es.Ready {
				t.Fatalf("export %+v", es)
			}
			c := apimeta.FindStatusCondition(fed.Status.Conditions, meshv1alpha1.ServicesExportedCondition)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || !strings.HasPrefix(c.Message, tc.message) || c.ObservedGeneration != 2 {
				t.Fatalf("ServicesExported %+v", c)
			}
			if tc := apimeta.FindStatusCondition(memberStatus(fed, "b").Conditions, meshv1alpha1.TopologyConfiguredCondition); tc == nil || tc.Status != metav1.ConditionUnknown {
				t.Fatalf("TopologyConfigured %+v", tc)
			}
		})
	}
	t.Run("spec.services removed clears everything", func(t *testing.T) {
		fed := &meshv1alpha1.MeshFederation{Spec: meshv1alpha1.MeshFederationSpec{Services: &meshv1alpha1.ServiceFederationSpec{}}}
		svcs := []*svcMember{member("a", true, true, "1.1.1.1")}
		setExportsStatus(fed, result{services: svcs})
		fed.Spec.Services = nil
		setExportsStatus(fed, result{})
		if fed.Status.Exports != nil || apimeta.FindStatusCondition(fed.Status.Conditions, meshv1alpha1.ServicesExportedCondition) != nil ||
			apimeta.FindStatusCondition(memberStatus(fed, "a").Conditions, meshv1alpha1.TopologyConfiguredCondition) != nil {
			t.Fatalf("status keeps exports: %+v", fed.Status)
		}
	})
}
