package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/controllers/setup"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

const fieldOwner = "meshplane-demo"

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// up starts the serve process unless it runs already, then applies the demo
// objects and prints what happened.
func up(dir string, nodes int) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := readState(dir)
	if err == nil && alive(st.PID) {
		fmt.Println("The demo is already running.")
	} else {
		if st, err = startServe(dir, nodes); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cfg, err := clientcmd.BuildConfigFromFlags("", st.Kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	step("waiting for the Meshplane manager to be ready (/readyz on %s)", st.ProbeAddr)
	if err := waitReady(ctx, "http://"+st.ProbeAddr+"/readyz"); err != nil {
		return fmt.Errorf("%w (manager log: %s)", err, st.ManagerLog)
	}
	applied, err := applySamples(ctx, c)
	if err != nil {
		return err
	}
	if err := demoMesh(ctx, c, st); err != nil {
		return err
	}
	step("running a workload on the fake nodes: Deployment default/podinfo, 3 replicas")
	if err := runWorkload(ctx, c); err != nil {
		return err
	}
	if err := report(ctx, c, st, applied); err != nil {
		return err
	}
	if err := showTrafficAndPolicy(ctx, c); err != nil {
		return err
	}
	if err := showResilience(ctx, c); err != nil {
		return err
	}
	if err := showEgressAndJWT(ctx, c); err != nil {
		return err
	}
	if err := showCanary(ctx, c); err != nil {
		return err
	}
	if err := demoBreakGlass(ctx, c); err != nil {
		return err
	}
	if err := showAmbient(ctx, c); err != nil {
		return err
	}
	if err := showMigration(ctx, c); err != nil {
		return err
	}
	printInstall()
	return nil
}

// printInstall ends the demo with the way to run Meshplane in a real
// cluster: the image make image builds, the chart that deploys it.
func printInstall() {
	fmt.Print(`
Install Meshplane into a real cluster (README: "Container image"):
  make image IMAGE_REPO=registry.example.com/meshplane     # FROM scratch, podman or docker
  podman push registry.example.com/meshplane:v` + version() + `            # or: make image-tar, for an air-gapped registry
  helm install meshplane charts/meshplane -n meshplane-system --create-namespace \
    --set image.repository=registry.example.com/meshplane
Stop and remove the demo: make demo-down
`)
}

// version is the VERSION file's, the tag make image builds.
func version() string {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "<VERSION>"
	}
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "<VERSION>"
	}
	return strings.TrimSpace(string(b))
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

// startServe launches "serve" in its own session so it outlives make.
func startServe(dir string, nodes int) (*state, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	_ = os.Remove(statePath(dir))
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "demo.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "serve", "-dir", dir, "-nodes", fmt.Sprint(nodes))
	cmd.Stdout, cmd.Stderr, cmd.Stdin = logFile, logFile, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	step("starting the simulated cluster (%d fake nodes) and the manager in the background; log %s", nodes, logPath)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(3 * time.Minute)
	for {
		if st, err := readState(dir); err == nil {
			_ = cmd.Process.Release()
			return st, nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("the demo cluster did not start (%v):\n%s", err, b)
		case <-deadline:
			return nil, fmt.Errorf("the demo cluster did not start within 3 minutes; see %s", logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitReady(ctx context.Context, url string) error {
	var last string
	for {
		resp, err := http.Get(url + "?verbose")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = string(b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("manager not ready: %s", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func applySamples(ctx context.Context, c client.Client) ([]*unstructured.Unstructured, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "meshplane_*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		if why := sampleSkipped(f); why != "" {
			step("sample %s left out: %s", filepath.Base(f), why)
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := ssa(ctx, c, u); err != nil {
			return nil, fmt.Errorf("applying %s: %w", filepath.Base(f), err)
		}
		out = append(out, u)
	}
	return out, nil
}

func runWorkload(ctx context.Context, c client.Client) error {
	labels := map[string]string{"app": "podinfo"}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.7.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
				}}},
			},
		},
	}
	if err := ssa(ctx, c, d); err != nil {
		return err
	}
	for {
		var got appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
			return err
		}
		if got.Status.AvailableReplicas == 3 && got.Status.ObservedGeneration == got.Generation {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the Deployment default/podinfo did not become Available")
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func ptr[T any](v T) *T { return &v }

func report(ctx context.Context, c client.Client, st *state, applied []*unstructured.Unstructured) error {
	if len(applied) > 0 {
		fmt.Println()
		fmt.Println("Samples applied from config/samples:")
	}
	for _, u := range applied {
		name := u.GetName()
		if u.GetNamespace() != "" {
			name = u.GetNamespace() + "/" + name
		}
		fmt.Printf("  %-16s %s\n", u.GetKind(), name)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("default"), client.MatchingLabels{"app": "podinfo"}); err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("Simulated cluster: %d fake nodes (%s); Deployment default/podinfo is Available:\n", len(st.Nodes), strings.Join(st.Nodes, ", "))
	for _, p := range pods.Items {
		fmt.Printf("  pod %-32s %-8s on %s\n", p.Name, p.Status.Phase, p.Spec.NodeName)
	}
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &svc); err == nil {
		fmt.Printf("  service range is loopback: kubernetes Service ClusterIP %s\n", svc.Spec.ClusterIP)
	}
	bin, _ := cluster.BinDir()
	fmt.Printf(`
The manager reconciles %s.

Use the cluster:
  export KUBECONFIG=%s
  %s/kubectl get meshplane            # every Meshplane kind (category)
  %s/kubectl get nodes,pods -A
  curl -s http://%s/metrics | grep meshplane_    # plain HTTP here (--metrics-secure=false); the chart serves HTTPS with a token
Logs: manager %s, cluster %s
`, strings.Join(setup.ReconciledKinds(), ", "), st.Kubeconfig, bin, bin, st.MetricsAddr, st.ManagerLog, st.ClusterLogs)
	return nil
}
