package meshfederation

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TestExportConflicts: the oldest export (creationTimestamp, then member
// name) stands for the service; other members' Services that differ in
// port number, protocol or type conflict with it, port names do not.
func TestExportConflicts(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	svc := func(headless bool, ports ...corev1.ServicePort) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}, Spec: corev1.ServiceSpec{Ports: ports}}
		if headless {
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}
		return s
	}
	p := func(name string, port int32, proto corev1.Protocol) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: port, Protocol: proto}
	}
	member := func(name string, created metav1.Time, s *corev1.Service) *svcMember {
		return &svcMember{m: &member{spec: meshv1alpha1.MemberCluster{Name: name}},
			export: memberExport{exports: []*corev1.Service{s}, created: map[string]metav1.Time{"shop/cart": created}}}
	}
	for _, tc := range []struct {
		name         string
		svcs         []*svcMember
		reason, msg  string
		ports        string
		headlessWins bool
	}{
		{name: "alike but for port names", svcs: []*svcMember{
			member("east", t0, svc(false, p("http", 8080, ""))), member("west", t1, svc(false, p("web", 8080, corev1.ProtocolTCP)))}},
		{name: "another port, the newer export", svcs: []*svcMember{
			member("west", t1, svc(false, p("http", 9090, corev1.ProtocolTCP))), member("east", t0, svc(false, p("http", 8080, corev1.ProtocolTCP)))},
			reason: "PortConflict", ports: "[8080/TCP]",
			msg: "the exports conflict (PortConflict): west exports ports [9090/TCP], and east (the oldest export) ports [8080/TCP], type ClusterSetIP; every ServiceImport takes east's: make the Services alike in every member"},
		{name: "another protocol and type, one second apart resolved by time", svcs: []*svcMember{
			member("a", t1, svc(false, p("dns", 53, corev1.ProtocolTCP))), member("b", t0, svc(true, p("dns", 53, corev1.ProtocolUDP)))},
			reason: "PortConflict,TypeConflict", ports: "[53/UDP]", headlessWins: true,
			msg: "the exports conflict (PortConflict,TypeConflict): a exports ports [53/TCP], a exports type ClusterSetIP, and b (the oldest export) ports [53/UDP], type Headless; every ServiceImport takes b's: make the Services alike in every member"},
		{name: "same time: the member name decides", svcs: []*svcMember{
			member("west", t0, svc(false, p("http", 9090, corev1.ProtocolTCP))), member("east", t0, svc(false, p("http", 8080, corev1.ProtocolTCP)))},
			reason: "PortConflict", ports: "[8080/TCP]",
			msg: "the exports conflict (PortConflict): west exports ports [9090/TCP], and east (the oldest export) ports [8080/TCP], type ClusterSetIP; every ServiceImport takes east's: make the Services alike in every member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := exportConflicts(tc.svcs)["shop/cart"]
			if got.reason != tc.reason || got.msg != tc.msg {
				t.Fatalf("conflict %+v, want %q %q", got, tc.reason, tc.msg)
			}
			all := aggregateExports(&meshv1alpha1.MeshFederation{}, tc.svcs)
			if len(all) != 1 {
				t.Fatalf("aggregated %+v", all)
			}
			si := serviceImport(all[0])
			if tc.ports != "" && (portsOf(&corev1.Service{Spec: corev1.ServiceSpec{Ports: all[0].Ports}}) != tc.ports || all[0].Headless != tc.headlessWins) {
				t.Fatalf("ServiceImport %+v does not follow the oldest export", si.Spec)
			}
			conds := exportConditions(tc.svcs[0], "shop/cart", exportConflicts(tc.svcs), 3)
			if len(conds) != 2 || conds[0].Type != "Valid" || conds[0].Status != metav1.ConditionTrue || conds[1].Type != "Conflict" || conds[1].ObservedGeneration != 3 {
				t.Fatalf("conditions %+v", conds)
			}
			if want := map[bool]metav1.ConditionStatus{true: metav1.ConditionTrue, false: metav1.ConditionFalse}[tc.reason != ""]; conds[1].Status != want {
				t.Fatalf("Conflict %+v", conds[1])
			}
		})
	}
}
