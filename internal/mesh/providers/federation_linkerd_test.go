package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// linkerdGatewayService is a peer's linkerd-gateway Service as the
// multicluster extension's chart renders it, with a load-balancer address.
func linkerdGatewayService(mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "linkerd-gateway",
		Annotations: map[string]string{
			"mirror.linkerd.io/gateway-identity": "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local",
			"mirror.linkerd.io/probe-path":       "/ready", "mirror.linkerd.io/probe-period": "3"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "mc-gateway", Port: 4143, NodePort: 30143}, {Name: "mc-probe", Port: 4191}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.96.3.1"}, {Hostname: "gw.west.example"}}}}}
	if mut != nil {
		mut(s)
	}
	return s
}

// TestLinkerdServiceFederationGolden pins what Linkerd service federation
// writes into a member for a peer (reader, credentials, Link) in gateway
// and gateway-less mode; the same objects are applied to the real Link CRD
// by controllers/meshfederation's TestLinkerdServiceFederation. A peer
// gateway that cannot be copied names what it lacks.
func TestLinkerdServiceFederationGolden(t *testing.T) {
	reg := Registry()
	sf, err := reg.ServiceFederation(meshv1alpha1.ProviderLinkerd)
	if err != nil {
		t.Fatal(err)
	}
	pl, ok := sf.(mesh.PeerLinks)
	if !ok {
		t.Fatal("Linkerd does not link peers")
	}
	if why := sf.FederationRefusal(mesh.InstallFacts{Provider: meshv1alpha1.ProviderLinkerd, MeshInstall: "linkerd"}); why != "" {
		t.Fatalf("refused: %s", why)
	}
	peer := mesh.FederationMember{Name: "west", MeshID: "mesh1", EastWestGateway: true}
	for name, m := range map[string]mesh.FederationMember{
		"federation-member-gateway.linkerd": {Name: "east", MeshID: "mesh1", EastWestGateway: true},
		"federation-member-flat.linkerd":    {Name: "east", Namespace: "linkerd-custom", MeshID: "mesh1"},
	} {
		t.Run(name, func(t *testing.T) {
			objs := append([]client.Object{}, sf.FederationReader(m).Objects...)
			objs = append(objs, sf.FederationOutputs(m)...)
			objs = append(objs, sf.PeerCredential(m, peer, []byte("kubeconfig of west")))
			links, why := pl.PeerLinks(m, peer, []byte("kubeconfig of west"), linkerdGatewayService(nil))
			if why != "" {
				t.Fatal(why)
			}
			objs = append(objs, links...)
			got := render(t, translation{golden: name, objs: objs})
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
	gw := mesh.FederationMember{Name: "east", EastWestGateway: true}
	for want, svc := range map[string]*corev1.Service{
		"waiting for the gateway Service linkerd-multicluster/linkerd-gateway of west": nil,
		"west: the gateway Service linkerd-multicluster/linkerd-gateway has no load-balancer ingress yet": linkerdGatewayService(func(s *corev1.Service) {
			s.Status = corev1.ServiceStatus{}
		}),
		"west: the gateway Service linkerd-multicluster/linkerd-gateway has no mirror.linkerd.io/gateway-identity annotation": linkerdGatewayService(func(s *corev1.Service) {
			delete(s.Annotations, "mirror.linkerd.io/gateway-identity")
		}),
		"west: the gateway Service linkerd-multicluster/linkerd-gateway has no ports named mc-gateway and mc-probe": linkerdGatewayService(func(s *corev1.Service) {
			s.Spec.Ports = s.Spec.Ports[:1]
		}),
		`west: the gateway Service linkerd-multicluster/linkerd-gateway has an unreadable mirror.linkerd.io/probe-period annotation "soon"`: linkerdGatewayService(func(s *corev1.Service) {
			s.Annotations["mirror.linkerd.io/probe-period"] = "soon"
		}),
	} {
		objs, why := pl.PeerLinks(gw, peer, []byte("kc"), svc)
		if !strings.Contains(why, want) || len(objs) != 2 {
			t.Errorf("why %q (%d objects), want %q", why, len(objs), want)
		}
	}
	// A NodePort gateway is reached on its node port.
	objs, why := pl.PeerLinks(gw, peer, []byte("kc"), linkerdGatewayService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }))
	if why != "" || !strings.Contains(render(t, translation{golden: "nodeport", objs: objs}), "gatewayPort: \"30143\"") {
		t.Fatalf("NodePort gateway: %q", why)
	}
}
