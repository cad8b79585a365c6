package chart

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// warnings collects the API server's warnings (Pod Security "would
// violate" warnings among them).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// syncBuffer is a bytes.Buffer safe for the manager's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInstallOnSimulatedCluster installs the rendered chart (HA values, CRDs
// from crds/) into a namespace that enforces Pod Security "restricted",
// waits for the Deployment to become Available, then runs the real manager
// binary as the chart's ServiceAccount with the Deployment's own arguments:
// it must become ready, take the leader lease and never be forbidden.
func TestInstallOnSimulatedCluster(t *testing.T) {
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Build the manager while the cluster is being filled.
	binDir := t.TempDir()
	built := make(chan error, 1)
	go func() {
		root, err := cluster.RepoRoot()
		if err != nil {
			built <- err
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "manager"), "./cmd/manager")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build ./cmd/manager: %w\n%s", err, out)
		}
		built <- err
	}()

	warn := &warnings{}
	cfg := rest.CopyConfig(sim.Config)
	cfg.WarningHandler = warn
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
	}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	objs := render(t, haValues(), true)
	// A ServiceMonitor needs prometheus-operator's CRD, which this cluster
	// does not have; it was checked by TestTemplateHA. The templated CRDs are
	// the same as crds/ (checked there too); install crds/ like `helm install`.
	var crds, rest []*unstructured.Unstructured
	seenCRD := map[string]bool{}
	for _, o := range objs {
		switch {
		case o.GetKind() == "ServiceMonitor":
		case o.GetKind() == "CustomResourceDefinition":
			if !seenCRD[o.GetName()] {
				seenCRD[o.GetName()] = true
				crds = append(crds, o)
			}
		default:
			rest = append(rest, o)
		}
	}
	if len(crds) != len(manager.Kinds) {
		t.Fatalf("rendered %d CRDs, want %d", len(crds), len(manager.Kinds))
	}
	apply := func(objs []*unstructured.Unstructured) {
		for _, o := range objs {
			if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("helm"), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured apply
				t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	apply(crds)
	warn.mu.Lock()
	for _, w := range warn.list {
		t.Logf("API server warning for the CRDs: %s", w)
	}
	warn.list = nil
	warn.mu.Unlock()
	apply(rest)
	warn.mu.Lock()
	for _, w := range warn.list {
		t.Errorf("API server warning while installing: %s", w)
	}
	warn.mu.Unlock()

	// The ReplicaSet creates the pods only if Pod Security admits them.
	deployName := ReleaseName
	var dep appsv1.Deployment
	waitUntil(t, ctx, "the Deployment to become Available with 2 ready replicas", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: deployName}, &dep); err != nil {
			return false, err.Error()
		}
		return dep.Status.AvailableReplicas == 2 && dep.Status.ReadyReplicas == 2, fmt.Sprintf("%+v", dep.Status.Conditions)
	})

	// The manager, as the chart's ServiceAccount.
	tok, err := cs.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, dep.Spec.Template.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sim"] = &clientcmdapi.Cluster{Server: sim.Config.Host, CertificateAuthorityData: sim.Config.CAData}
	kc.AuthInfos["meshplane"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["sim"] = &clientcmdapi.Context{Cluster: "sim", AuthInfo: "meshplane", Namespace: Namespace}
	kc.CurrentContext = "sim"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	metricsAddr, probeAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	args := localArgs(dep.Spec.Template.Spec.Containers[0].Args, metricsAddr, probeAddr)
	t.Logf("manager args: %v", args)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	cmd := exec.Command(filepath.Join(binDir, "manager"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAMESPACE="+Namespace)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("manager log:\n%s", log.String())
		}
	}()

	waitUntil(t, ctx, "the manager's /readyz", func() (bool, string) {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("manager exited: %v\n%s", err, log.String())
		default:
		}
		code, body := httpGet("http://" + probeAddr + "/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	waitUntil(t, ctx, "the leader lease", func() (bool, string) {
		var l coordinationv1.Lease
		if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: manager.LeaderElectionID}, &l); err != nil {
			return false, err.Error()
		}
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", "no holder yet"
	})
	// Secure metrics: a scraper's token bound by the chart to the
	// metrics-reader ClusterRole (metrics.readerServiceAccounts) gets them,
	// no token gets 401.
	if _, err := cs.CoreV1().ServiceAccounts(Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	scraper, err := cs.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, "prometheus", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The endpoint listens once its self-signed certificate is generated.
	waitUntil(t, ctx, "the secure metrics endpoint to answer 401 without a token", func() (bool, string) {
		code, body := httpsGet("https://"+metricsAddr+"/metrics", "")
		return code == http.StatusUnauthorized, fmt.Sprintf("%d %s", code, body)
	})
	code, body := httpsGet("https://"+metricsAddr+"/metrics", scraper.Status.Token)
	if code != http.StatusOK || !strings.Contains(body, "meshplane_build_info") {
		t.Errorf("metrics: %d, meshplane_build_info missing", code)
	}
	// Give the controllers' informers time to list and watch as the
	// ServiceAccount; a missing permission shows up as "forbidden".
	time.Sleep(5 * time.Second)
	stop()
	if l := strings.ToLower(log.String()); strings.Contains(l, "forbidden") {
		t.Errorf("the manager was forbidden something: the chart's RBAC lags the controllers' markers (run make manifests chart)")
	}
	if strings.Contains(log.String(), `"level":"error"`) {
		t.Errorf("the manager logged errors")
	}
}

// localArgs are the Deployment's arguments with the listen addresses moved
// to free loopback ports.
func localArgs(args []string, metricsAddr, probeAddr string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = "--metrics-bind-address=" + metricsAddr
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=" + probeAddr
		}
		out = append(out, a)
	}
	return out
}

// waitUntil polls f with testenv.Eventually until it holds, within what is
// left of the test's deadline (ctx).
func waitUntil(t *testing.T, ctx context.Context, what string, f func() (bool, string)) {
	t.Helper()
	deadline, _ := ctx.Deadline()
	testenv.Eventually(t, time.Until(deadline), what, func() error {
		if ok, msg := f(); !ok {
			return errors.New(msg)
		}
		return nil
	})
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// httpsGet GETs url with a bearer token; the manager's metrics
// certificate is self-signed.
func httpsGet(url, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ptr[T any](v T) *T { return &v }
