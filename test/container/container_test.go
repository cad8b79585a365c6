// Package container runs Meshplane's image the way the Helm chart deploys
// it: `make image` builds it (hack/image.sh), the chart is rendered with the
// Helm SDK, and the container gets exactly the Deployment's arguments,
// environment, user, read-only root filesystem, dropped capabilities and
// volumes (the emptyDir as a tmpfs, the service account token projected at
// the in-cluster path), on the host network, against a simulated cluster.
// It must reach Ready for a MeshInstall (Istio from a local chart
// repository) and a TrafficSplit.
//
// No container engine (no podman, docker without a daemon) skips the test;
// with CI=true hack/container.sh installs podman with apt-get, and a failure
// to get an engine fails the test.
package container

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/chart"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
)

var ctx = context.Background()

// engine returns the container engine hack/container.sh picks, or skips
// (fails with CI=true) when none can run.
func engine(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "hack", "container.sh"), "--which").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 && os.Getenv(cluster.EnvCI) != "true" {
			t.Skipf("skipping: no container engine can run here (%s); install podman and runc (apt-get install podman runc) or run with CI=true", strings.TrimSpace(string(ee.Stderr)))
		}
		t.Fatalf("hack/container.sh --which: %v %s", err, stderrOf(err))
	}
	return strings.TrimSpace(string(out))
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// makeDefaults reads VERSION and the Makefile's IMAGE_REPO default: the
// image `make image` builds.
func makeDefaults(t *testing.T, root string) (version, image string) {
	t.Helper()
	version, image, err := chart.MakeImage(root)
	if err != nil {
		t.Fatal(err)
	}
	return version, image
}

func TestImageRunsAsTheChartDeploysIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs a simulated cluster")
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	eng := engine(t, root)
	version, image := makeDefaults(t, root)

	vals := map[string]any{"metrics": map[string]any{"readerServiceAccounts": []any{map[string]any{"name": "prometheus", "namespace": chart.Namespace}}}}
	objs, err := chart.Render(vals, true)
	if err != nil {
		t.Fatal(err)
	}
	dep := deployment(t, objs)
	pod := dep.Spec.Template.Spec
	mgr := pod.Containers[0]
	if mgr.Image != image {
		t.Fatalf("the chart's default image is %s, make image builds %s (run make chart)", mgr.Image, image)
	}

	// Build the image in the background while the cluster starts.
	built := make(chan error, 1)
	go func() {
		start := time.Now()
		out, err := exec.Command(filepath.Join(root, "hack", "image.sh"), "build", image, version).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("hack/image.sh build: %w\n%s", err, out)
		} else {
			t.Logf("image %s built with %s in %s", image, eng, time.Since(start).Round(time.Second))
		}
		built <- err
	}()

	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1})
	c, err := client.New(sim.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(sim.Config)
	install(t, c, objs)

	secrets := serviceAccountDir(t, cs, pod.ServiceAccountName, sim.Config.CAData)
	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("meshplane-e2e-%d", time.Now().UnixNano())
	args := runArgs(t, eng, name, sim.Config.Host, secrets, pod, mgr, image, metricsAddr, probeAddr)
	t.Logf("%s %s", eng, strings.Join(args, " "))
	ctr := filepath.Join(root, "hack", "container.sh")
	if out, err := exec.Command(ctr, args...).CombinedOutput(); err != nil {
		t.Fatalf("starting the container: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(ctr, "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", tail(string(out), 120))
		}
		_ = exec.Command(ctr, "rm", "-f", "-t", "5", name).Run()
	})

	eventually(t, 2*time.Minute, "the container's /readyz", func() error {
		if out, err := exec.Command(ctr, "inspect", "-f", "{{.State.Running}}", name).Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
			logs, _ := exec.Command(ctr, "logs", name).CombinedOutput()
			t.Fatalf("the container is not running (%v %s):\n%s", err, out, tail(string(logs), 60))
		}
		code, body := get("http://"+probeAddr+"/readyz", "")
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	checkMetrics(t, cs, metricsAddr, version)
	reachReady(t, c)
}

func deployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("the chart rendered no Deployment")
	return nil
}

// install applies what `helm install` would, except the Deployment (the
// container is the manager; kwok would only pretend to run it) and the
// ServiceMonitor (no prometheus-operator here).
func install(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chart.Namespace}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, o := range objs {
		key := o.GetKind() + "/" + o.GetName()
		if o.GetKind() == "Deployment" || o.GetKind() == "ServiceMonitor" || seen[key] {
			continue
		}
		seen[key] = true
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("helm"), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured apply
			t.Fatalf("applying %s: %v", key, err)
		}
	}
	eventually(t, time.Minute, "the chart's CRDs established", func() error {
		var l apiextensionsv1.CustomResourceDefinitionList
		if err := c.List(ctx, &l); err != nil {
			return err
		}
		n := 0
		for _, crd := range l.Items {
			for _, cd := range crd.Status.Conditions {
				if cd.Type == apiextensionsv1.Established && cd.Status == apiextensionsv1.ConditionTrue && strings.HasSuffix(crd.Name, ".meshplane.io") {
					n++
				}
			}
		}
		if n < 7 {
			return fmt.Errorf("%d Meshplane CRDs established", n)
		}
		return nil
	})
}

// serviceAccountDir writes what the kubelet projects into a pod at
// /var/run/secrets/kubernetes.io/serviceaccount: a token of the chart's
// ServiceAccount, the cluster CA and the namespace, readable by the
// container's non-root user.
func serviceAccountDir(t *testing.T, cs kubernetes.Interface, sa string, caData []byte) string {
	t.Helper()
	exp := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(chart.Namespace).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "serviceaccount")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": caData, "namespace": []byte(chart.Namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runArgs are the engine's run arguments for the chart's pod: the
// Deployment's args (listen addresses moved to free loopback ports, as the
// host network is shared), env (fieldRefs resolved), user and group,
// read-only root filesystem, no capabilities, no privilege escalation, each
// emptyDir as a tmpfs at its mount path, and the service account files with
// KUBERNETES_SERVICE_HOST/PORT so the manager uses its in-cluster config.
func runArgs(t *testing.T, eng, name, apiHost, saDir string, pod corev1.PodSpec, ctr corev1.Container, image, metricsAddr, probeAddr string) []string {
	t.Helper()
	u, err := url.Parse(apiHost)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "-d", "--name", name, "--network", "host", "--pull", "never"}
	uid, gid := pod.SecurityContext.RunAsUser, pod.SecurityContext.RunAsGroup
	if sc := ctr.SecurityContext; sc != nil && sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid == nil || gid == nil {
		t.Fatalf("the chart's pod sets no runAsUser/runAsGroup")
	}
	args = append(args, "--user", fmt.Sprintf("%d:%d", *uid, *gid))
	if sc := ctr.SecurityContext; sc != nil {
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			args = append(args, "--read-only")
			if eng == "podman" {
				// Podman adds tmpfs mounts to read-only containers by
				// default; the pod has only the volumes it declares.
				args = append(args, "--read-only-tmpfs=false")
			}
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			args = append(args, "--security-opt", "no-new-privileges")
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Drop {
				args = append(args, "--cap-drop", string(c))
			}
		}
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	for _, m := range ctr.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok || v.EmptyDir == nil {
			t.Fatalf("volume %s: only emptyDir volumes are mapped (to a tmpfs)", m.Name)
		}
		opt := "type=tmpfs,destination=" + m.MountPath + ",tmpfs-mode=1777"
		if v.EmptyDir.SizeLimit != nil {
			opt += ",tmpfs-size=" + strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
		}
		args = append(args, "--mount", opt)
	}
	args = append(args, "-v", saDir+":/var/run/secrets/kubernetes.io/serviceaccount:ro",
		"-e", "KUBERNETES_SERVICE_HOST="+host, "-e", "KUBERNETES_SERVICE_PORT="+port)
	for _, e := range ctr.Env {
		val := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
				t.Fatalf("env %s: only metadata.namespace fieldRefs are resolved", e.Name)
			}
			val = chart.Namespace
		}
		args = append(args, "-e", e.Name+"="+val)
	}
	args = append(args, image)
	for _, a := range ctr.Args {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = "--metrics-bind-address=" + metricsAddr
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=" + probeAddr
		}
		args = append(args, a)
	}
	return args
}

// checkMetrics scrapes the secure endpoint with a token bound to the
// chart's metrics-reader ClusterRole: the version make image stamped.
func checkMetrics(t *testing.T, cs kubernetes.Interface, addr, version string) {
	t.Helper()
	if _, err := cs.CoreV1().ServiceAccounts(chart.Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(chart.Namespace).CreateToken(ctx, "prometheus", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `version="` + version + `"`
	eventually(t, time.Minute, "metrics with "+want, func() error {
		if code, body := get("https://"+addr+"/metrics", ""); code != http.StatusUnauthorized {
			return fmt.Errorf("without a token: %d %.200s", code, body)
		}
		code, body := get("https://"+addr+"/metrics", tok.Status.Token)
		if code != http.StatusOK {
			return fmt.Errorf("%d %.200s", code, body)
		}
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "meshplane_build_info{") {
				if !strings.Contains(l, want) {
					t.Fatalf("build info %s lacks %s", l, want)
				}
				return nil
			}
		}
		return errors.New("no meshplane_build_info")
	})
}

// reachReady installs Istio (fixture charts from a local chart repository,
// injector served by fakeistiod) with a MeshInstall, then a TrafficSplit in
// a namespace Istio serves; both must become Ready, reconciled by the
// container.
func reachReady(t *testing.T, c client.Client) {
	t.Helper()
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 3*time.Minute, "MeshInstall istio Ready", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		return readyErr(mi.Status.Conditions, mi.Status.ObservedGeneration, mi.Generation)
	})
	t.Logf("MeshInstall istio Ready in %s", time.Since(start).Round(100*time.Millisecond))

	const ns = "shop"
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}}
	for _, n := range []string{"reviews", "reviews-v1", "reviews-v2"} {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}})
	}
	port := int32(9080)
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "reviews", Port: &port},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "reviews-v1", Weight: 90}, {Name: "reviews-v2", Weight: 10}}}}
	for _, o := range append(objs, ts) {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	start = time.Now()
	eventually(t, 2*time.Minute, "TrafficSplit shop/reviews Ready", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ts), ts); err != nil {
			return err
		}
		return readyErr(ts.Status.Conditions, ts.Status.ObservedGeneration, ts.Generation)
	})
	if ts.Status.Provider != meshv1alpha1.ProviderIstio || len(ts.Status.Inventory) == 0 {
		t.Fatalf("TrafficSplit Ready with provider %q and inventory %v", ts.Status.Provider, ts.Status.Inventory)
	}
	t.Logf("TrafficSplit shop/reviews Ready on %s in %s, wrote %v", ts.Status.Provider, time.Since(start).Round(100*time.Millisecond), ts.Status.Inventory)
}

func readyErr(conds []metav1.Condition, observed, gen int64) error {
	cd := apimeta.FindStatusCondition(conds, meshv1alpha1.ReadyCondition)
	if cd == nil || cd.Status != metav1.ConditionTrue || observed != gen {
		return fmt.Errorf("Ready %+v (observedGeneration %d, generation %d)", cd, observed, gen)
	}
	return nil
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

// get GETs url with an optional bearer token; the metrics certificate is
// self-signed.
func get(u, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
