package manager

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/test/cluster"
)

// TestSecureMetrics runs the manager with the secure metrics endpoint as the
// meshplane ServiceAccount holding only config/rbac/role.yaml (so the
// generated role must grant TokenReview and SubjectAccessReview), and
// scrapes it: no token 401, a token without the metrics-reader ClusterRole
// 403, a token bound to config/rbac/metrics_reader_role.yaml 200.
func TestSecureMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	cs := kubernetes.NewForConfigOrDie(srv.Config)
	ctx := context.Background()
	const ns = "meshplane-system"
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	for _, sa := range []string{"controller-manager", "stranger", "prometheus"} {
		mustCreate(t, func() error {
			_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
			return err
		})
	}
	bindRepoClusterRole(t, cs, "role.yaml", "controller-manager")
	bindRepoClusterRole(t, cs, "metrics_reader_role.yaml", "prometheus")

	// The manager authenticates as its ServiceAccount, as in a cluster.
	cfg := rest.CopyConfig(srv.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":controller-manager"}
	o := Options{MetricsAddr: freeAddr(t), ProbeAddr: "0", SecureMetrics: true, SyncPeriod: time.Hour, OperatorNamespace: ns}
	mgr, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with %v", err)
		}
	})

	url := "https://" + o.MetricsAddr + "/metrics"
	scrape := func(token string) (int, string) {
		t.Helper()
		var code int
		var body string
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			code, body, err = getTLS(url, token)
			if err == nil && code != http.StatusInternalServerError {
				return code, body
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: %d %q %v", url, code, body, err)
		return 0, ""
	}
	if code, body := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %q, want 401", code, body)
	}
	// A token the API server does not know is refused; controller-runtime's
	// filter answers 500 "Authentication failed" (the bearer authenticator
	// reports an invalid token as an error), never the metrics.
	if code, body, err := getTLS(url, "not-a-token"); err != nil || code == http.StatusOK || strings.Contains(body, "meshplane_build_info") {
		t.Errorf("a forged token: %d %q %v, want a refusal", code, body, err)
	}
	if code, body := scrape(token(t, cs, ns, "stranger")); code != http.StatusForbidden {
		t.Errorf("a token without metrics-reader: %d %q, want 403", code, body)
	}
	code, body := scrape(token(t, cs, ns, "prometheus"))
	if code != http.StatusOK || !strings.Contains(body, "meshplane_build_info") {
		t.Errorf("a token with metrics-reader: %d, want 200 with meshplane_build_info:\n%.500s", code, body)
	}
	// Plain HTTP is not served on the secure port.
	if code, _, err := get("http://" + o.MetricsAddr + "/metrics"); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP scrape of the secure endpoint answered 200")
	}
}

func mustCreate(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

// bindRepoClusterRole creates the ClusterRole in config/rbac/<file> and binds
// it to the ServiceAccount meshplane-system/<sa>.
func bindRepoClusterRole(t *testing.T, cs kubernetes.Interface, file, sa string) {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(b, &role); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ctx := context.Background()
	mustCreate(t, func() error {
		_, err := cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-" + sa},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: "meshplane-system"}},
		}, metav1.CreateOptions{})
		return err
	})
}

func token(t *testing.T, cs kubernetes.Interface, ns, sa string) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func getTLS(url, bearer string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	// The endpoint's certificate is self-signed, as a ServiceMonitor's
	// tlsConfig.insecureSkipVerify accepts.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, err = io.Copy(&sb, resp.Body)
	return resp.StatusCode, sb.String(), err
}

// get GETs url over plain HTTP.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// freeAddr returns a loopback address with a free port (testenv.FreeAddr;
// this in-package test cannot import testenv, which imports the manager).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
