package providers

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

func gatewayPod(name string, containers ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "envoy-gateway-system"}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

// TestIngressBackendMTLS pins each mesh's answer to "does the gateway
// reach its backends over mTLS", with the words of its explanation.
func TestIngressBackendMTLS(t *testing.T) {
	reg := Registry()
	ambient := installed(meshv1alpha1.ProviderIstio)
	ambient.Namespace = ambientNoWaypoint
	withAuth := installed(meshv1alpha1.ProviderCilium)
	withAuth.Install.MutualAuth, withAuth.Install.Encryption = true, meshv1alpha1.CiliumEncryptionType("wireguard")
	authOnly := installed(meshv1alpha1.ProviderCilium)
	authOnly.Install.MutualAuth = true
	encOnly := installed(meshv1alpha1.ProviderCilium)
	encOnly.Install.Encryption = meshv1alpha1.CiliumEncryptionType("wireguard")
	nativeSidecar := gatewayPod("eg-2", "envoy")
	nativeSidecar.Spec.InitContainers = []corev1.Container{{Name: "linkerd-proxy"}}
	terminating := gatewayPod("eg-old", "envoy")
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	disabled := igSpec(func(s *meshv1alpha1.IngressGatewaySpec) { s.MeshInjection = meshv1alpha1.MeshInjectionDisabled }, httpListener)
	for _, tc := range []struct {
		name  string
		p     meshv1alpha1.Provider
		s     *mesh.Scope
		spec  *meshv1alpha1.IngressGatewaySpec
		obs   mesh.GatewayObservation
		want  meshv1alpha1.BackendMTLS
		words []string
	}{
		{"istio sidecar programmed", meshv1alpha1.ProviderIstio, nil, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSYes, []string{"Istio proxy with a mesh identity", "plain text"}},
		{"istio ambient programmed", meshv1alpha1.ProviderIstio, &ambient, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSYes, []string{"HBONE"}},
		{"istio not programmed", meshv1alpha1.ProviderIstio, nil, nil, mesh.GatewayObservation{},
			meshv1alpha1.BackendMTLSUnknown, []string{"not programmed"}},
		{"cilium without mutual auth", meshv1alpha1.ProviderCilium, nil, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSNo, []string{"without mTLS", "spec.cilium.mutualAuth", "spec.cilium.encryption", "MeshInstall cilium"}},
		{"cilium encryption only", meshv1alpha1.ProviderCilium, &encOnly, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSNo, []string{"encrypted (wireguard) but not mutually authenticated"}},
		{"cilium mutual auth only", meshv1alpha1.ProviderCilium, &authOnly, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSNo, []string{"transparent encryption (spec.cilium.encryption) is off"}},
		{"cilium mutual auth and encryption", meshv1alpha1.ProviderCilium, &withAuth, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSYes, []string{"wireguard", "mtls.mode Strict"}},
		{"cilium mutual auth, not programmed", meshv1alpha1.ProviderCilium, &withAuth, nil, mesh.GatewayObservation{},
			meshv1alpha1.BackendMTLSUnknown, []string{"not programmed"}},
		{"linkerd no pods", meshv1alpha1.ProviderLinkerd, nil, nil, mesh.GatewayObservation{Programmed: true},
			meshv1alpha1.BackendMTLSUnknown, []string{"meshplane.io/ingress-gateway=web", "spec.infrastructure labels"}},
		{"linkerd injected", meshv1alpha1.ProviderLinkerd, nil, nil,
			mesh.GatewayObservation{Pods: []corev1.Pod{gatewayPod("eg-1", "envoy", "linkerd-proxy"), nativeSidecar, terminating}},
			meshv1alpha1.BackendMTLSYes, []string{"2 of 2 gateway pod(s) run linkerd-proxy"}},
		{"linkerd one pod not injected", meshv1alpha1.ProviderLinkerd, nil, nil,
			mesh.GatewayObservation{Pods: []corev1.Pod{gatewayPod("eg-1", "envoy", "linkerd-proxy"), gatewayPod("eg-3", "envoy")}},
			meshv1alpha1.BackendMTLSNo, []string{"1 of 2 gateway pod(s) run without linkerd-proxy (envoy-gateway-system/eg-3)", "linkerd.io/inject: enabled", "restart them"}},
		{"linkerd injection disabled", meshv1alpha1.ProviderLinkerd, nil, &disabled,
			mesh.GatewayObservation{Pods: []corev1.Pod{gatewayPod("eg-1", "envoy", "linkerd-proxy")}},
			meshv1alpha1.BackendMTLSNo, []string{"spec.meshInjection is Disabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := reg.IngressTranslator(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			s := installed(tc.p)
			if tc.s != nil {
				s = *tc.s
			}
			spec := igSpec(nil, httpListener)
			if tc.spec != nil {
				spec = *tc.spec
			}
			got := tr.BackendMTLS(ingressGateway(tc.p, tc.name, spec), s, tc.obs)
			if got.Answer != tc.want || got.Reason == "" {
				t.Fatalf("answer %s (%s), want %s: %s", got.Answer, got.Reason, tc.want, got.Message)
			}
			for _, w := range tc.words {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message does not say %q: %s", w, got.Message)
				}
			}
		})
	}
}
