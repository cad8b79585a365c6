package remote

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
)

func kubeconfig(server, user string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    insecure-skip-tls-verify: true
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
users:
- name: u
  user:
%s
`, server, user)
}

func secret(data string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "meshplane-system", Name: "west"},
		Data: map[string][]byte{"kubeconfig": []byte(data)}}
}

func TestRefusesPluginsAndFiles(t *testing.T) {
	c := &Cache{Scheme: scheme.New()}
	for _, tc := range []struct{ user, want string }{
		{"    exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}", `exec plugin "aws"`},
		{"    auth-provider: {name: gcp}", `auth-provider plugin "gcp"`},
		{"    tokenFile: /var/run/token", "references files"},
		{"    client-certificate: /etc/cert.pem\n    client-key: /etc/key.pem", "references files"},
		{"    token: abc\n    as: admin", "impersonates"},
	} {
		_, err := c.Client(secret(kubeconfig("https://127.0.0.1:1", tc.user)), "")
		var ik *InvalidKubeconfigError
		if !errors.As(err, &ik) || !strings.Contains(err.Error(), tc.want) || !outcome.IsTerminal(err) {
			t.Errorf("%q: got %v, want %q", tc.user, err, tc.want)
		}
	}
	caFile := strings.Replace(kubeconfig("https://127.0.0.1:1", "    token: abc"), "insecure-skip-tls-verify: true", "certificate-authority: /etc/ca.pem", 1)
	if _, err := c.Client(secret(caFile), ""); err == nil || !strings.Contains(err.Error(), "certificate-authority-data") {
		t.Errorf("CA file: %v", err)
	}
	if _, err := c.Client(secret("not: [yaml"), ""); err == nil {
		t.Error("garbage accepted")
	}
	if _, err := c.Client(secret(kubeconfig("https://127.0.0.1:1", "    token: abc")), "other"); err == nil || !strings.Contains(err.Error(), `no key "other"`) {
		t.Errorf("missing key: %v", err)
	}
	if c.Len() != 0 {
		t.Fatalf("refused kubeconfigs were cached: %d", c.Len())
	}
}

func TestCachedUntilDataChanges(t *testing.T) {
	c := &Cache{Scheme: scheme.New()}
	s := secret(kubeconfig("https://127.0.0.1:1", "    token: abc"))
	a, err := c.Client(s, "")
	if err != nil {
		t.Fatal(err)
	}
	s.ResourceVersion = "2" // metadata-only change: same client
	if b, _ := c.Client(s, ""); b != a {
		t.Fatal("client rebuilt although the kubeconfig did not change")
	}
	s.Data["kubeconfig"] = []byte(kubeconfig("https://127.0.0.1:2", "    token: def"))
	b, err := c.Client(s, "")
	if err != nil || b == a {
		t.Fatalf("client not rebuilt after the kubeconfig changed: %v", err)
	}
	rc, err := RESTConfig("x", s.Data["kubeconfig"], 0)
	if err != nil || rc.Timeout != DefaultTimeout || rc.BearerToken != "def" {
		t.Fatalf("rest config: %v %+v", err, rc)
	}
	c.Forget("meshplane-system", "west")
	if c.Len() != 0 {
		t.Fatal("Forget kept the client")
	}
}

func TestIsUnreachable(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	if IsUnreachable(apierrors.NewForbidden(gr, "x", errors.New("no"))) || IsUnreachable(nil) {
		t.Fatal("an answer counted as unreachable")
	}
	if !IsUnreachable(errors.New("dial tcp 127.0.0.1:1: connect: connection refused")) || !IsUnreachable(apierrors.NewServiceUnavailable("down")) {
		t.Fatal("unreachable not recognised")
	}
}
