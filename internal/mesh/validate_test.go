package mesh

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestValidPath(t *testing.T) {
	for p, ok := range map[string]bool{"/": true, "/api/v1": true, "/a~b_c.d": true, "/a//b": false, "/a/./b": false,
		"/a/../b": false, "/a%2fb": false, "/a#b": false, "/a/..": false, "/a/.": false, "/a b": false, "api": false, "/a\r\n": false} {
		if err := ValidPath(p); (err == nil) != ok {
			t.Errorf("ValidPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestCheckServicePort(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "dns"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
		{Name: "syslog", Port: 514, Protocol: corev1.ProtocolUDP}, {Name: "http", Port: 8080},
	}}}
	for port, refused := range map[int32]bool{53: false, 8080: false, 514: true} {
		err := CheckServicePort(meshv1alpha1.ProviderIstio, "spec.service.port", svc, port)
		var uf *UnsupportedFeatureError
		if refused != errors.As(err, &uf) {
			t.Errorf("port %d: refused=%v, got %v", port, refused, err)
		}
	}
}
