package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshplane/meshplane/test/cluster"
)

// thirdPartyCRDs are CRDs Meshplane writes, one or more per mesh.
var thirdPartyCRDs = []string{
	"virtualservices.networking.istio.io",
	"destinationrules.networking.istio.io",
	"peerauthentications.security.istio.io",
	"authorizationpolicies.security.istio.io",
	"httproutes.gateway.networking.k8s.io",
	"ciliumnetworkpolicies.cilium.io",
	"ciliumenvoyconfigs.cilium.io",
	"servers.policy.linkerd.io",
	"authorizationpolicies.policy.linkerd.io",
	"meshtlsauthentications.policy.linkerd.io",
	"httproutes.policy.linkerd.io",
}

// envtestOptions installs every third-party set. Meshplane's own CRDs are
// left out: these tests are about the harness, and the controllers' tests
// install and exercise the API's CRDs.
var envtestOptions = cluster.EnvtestOptions{
	CRDs: cluster.CRDOptions{SkipMeshplaneCRDs: true},
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

func TestEnvtest(t *testing.T) {
	start := time.Now()
	cfg := cluster.UseEnvtest(t, envtestOptions)
	t.Logf("envtest with %d third-party CRD sets up in %s", len(cluster.AllCRDSets), time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	assertLoopbackKubernetesService(t, cfg)
	assertEstablished(t, cfg, thirdPartyCRDs...)

	// The schemas are enforced: a valid HTTPRoute is accepted, one that
	// breaks the Gateway API schema is rejected.
	dyn := dynamic.NewForConfigOrDie(cfg)
	routes := dyn.Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).Namespace("default")
	route := func(name string, weight int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1",
			"kind":       "HTTPRoute",
			"metadata":   map[string]any{"name": name},
			"spec": map[string]any{
				"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "reviews"}},
				"rules": []any{map[string]any{
					"backendRefs": []any{map[string]any{"name": "reviews-v2", "port": int64(9080), "weight": weight}},
				}},
			},
		}}
	}
	if _, err := routes.Create(ctx, route("valid", 50), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a valid HTTPRoute: %v", err)
	}
	_, err := routes.Create(ctx, route("invalid", -1), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("creating an HTTPRoute with weight -1: want Invalid, got %v", err)
	}
}

func TestSimulated(t *testing.T) {
	start := time.Now()
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2})
	t.Logf("simulated cluster with %d nodes up in %s", len(sim.Nodes), time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	// The kubeconfig file works on its own.
	kc, err := clientcmd.BuildConfigFromFlags("", sim.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(kc)
	assertLoopbackKubernetesService(t, kc)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "reviews"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: ns.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "reviews",
					Image: "registry.invalid/reviews:v1", // never pulled
				}}},
			},
		},
	}
	created := time.Now()
	if _, err := cs.AppsV1().Deployments(ns.Name).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, cs, ns.Name, deploy.Name, 2)
	t.Logf("Deployment Available with 2 ready replicas after %s", time.Since(created).Round(time.Millisecond))

	pods, err := cs.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "app=reviews"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("want 2 pods, got %d", len(pods.Items))
	}
	for _, p := range pods.Items {
		if !slices.Contains(sim.Nodes, p.Spec.NodeName) {
			t.Errorf("pod %s is on node %q, want one of the kwok nodes %v", p.Name, p.Spec.NodeName, sim.Nodes)
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("pod %s: phase %s, IP %q; want Running with an IP", p.Name, p.Status.Phase, p.Status.PodIP)
		}
	}

	// Scaling down deletes a pod: kwok completes the graceful deletion.
	scale, err := cs.AppsV1().Deployments(ns.Name).GetScale(ctx, deploy.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 1
	if _, err := cs.AppsV1().Deployments(ns.Name).UpdateScale(ctx, deploy.Name, scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "app=reviews"})
		return err == nil && len(pods.Items) == 1, nil
	})
	if err != nil {
		t.Fatalf("waiting for the scaled-down pod to be deleted: %v", err)
	}
}

func TestMulti(t *testing.T) {
	// The experimental Gateway API channel here, the standard one in
	// TestEnvtest; logs go to files.
	opts := envtestOptions
	opts.CRDs.GatewayAPIChannel = cluster.GatewayAPIExperimental
	opts.LogDir = t.TempDir()
	start := time.Now()
	m := cluster.UseMulti(t, 2, opts)
	t.Logf("2 envtest servers up in %s", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	if len(m.Servers) != 2 {
		t.Fatalf("want 2 servers, got %d", len(m.Servers))
	}
	if a, b := m.Servers[0].Config.Host, m.Servers[1].Config.Host; a == b {
		t.Fatalf("both servers listen on %s", a)
	}
	for i, s := range m.Servers {
		// Reach each server through its kubeconfig, as a federation
		// controller would through a kubeconfig Secret.
		cfg, err := clientcmd.RESTConfigFromKubeConfig(s.KubeConfig)
		if err != nil {
			t.Fatalf("server %d: kubeconfig: %v", i, err)
		}
		cs := kubernetes.NewForConfigOrDie(cfg)
		if _, err := cs.Discovery().ServerVersion(); err != nil {
			t.Fatalf("server %d (%s) unreachable: %v", i, cfg.Host, err)
		}
		assertEstablished(t, cfg, slices.Concat(thirdPartyCRDs, []string{"xmeshes.gateway.networking.x-k8s.io"})...)
		for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
			path := filepath.Join(opts.LogDir, fmt.Sprintf("server-%d", i), name)
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Errorf("server %d: log %s missing or empty (%v)", i, path, err)
			}
		}
	}

	// Each server has its own etcd: an object written to one is absent from
	// the other.
	cs0 := kubernetes.NewForConfigOrDie(m.Servers[0].Config)
	cs1 := kubernetes.NewForConfigOrDie(m.Servers[1].Config)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-0"}}
	if _, err := cs0.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs1.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace created in server 0, lookup in server 1: want NotFound, got %v", err)
	}
}

func TestCRDOptionsDirs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(cluster.EnvCRDDir, dir)

	_, err := cluster.CRDOptions{SkipMeshplaneCRDs: true}.Dirs()
	if err == nil || !strings.Contains(err.Error(), "make test-crds") {
		t.Fatalf("missing CRDs: want an error pointing to make test-crds, got %v", err)
	}

	for _, sub := range []string{"istio", "cilium", "linkerd", "mcs", "gateway-api/standard", "gateway-api/experimental"} {
		writeFile(t, filepath.Join(dir, sub, "crd.yaml"))
	}
	dirs, err := cluster.CRDOptions{SkipMeshplaneCRDs: true}.Dirs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"istio", "gateway-api/standard", "cilium", "linkerd", "mcs"}
	if len(dirs) != len(want) {
		t.Fatalf("dirs %v, want %v", dirs, want)
	}
	for i, w := range want {
		if dirs[i] != filepath.Join(dir, w) {
			t.Errorf("dirs[%d] = %s, want %s", i, dirs[i], filepath.Join(dir, w))
		}
	}
	dirs, err = cluster.CRDOptions{
		SkipMeshplaneCRDs: true,
		ThirdParty:        []cluster.CRDSet{cluster.GatewayAPI},
		GatewayAPIChannel: cluster.GatewayAPIExperimental,
	}.Dirs()
	if err != nil || len(dirs) != 1 || dirs[0] != filepath.Join(dir, "gateway-api", "experimental") {
		t.Fatalf("experimental channel: got %v, %v", dirs, err)
	}
	dirs, err = cluster.CRDOptions{SkipMeshplaneCRDs: true, NoThirdParty: true}.Dirs()
	if err != nil || len(dirs) != 0 {
		t.Fatalf("no CRDs: got %v, %v", dirs, err)
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv(cluster.EnvBinDir, t.TempDir())
	_, _, err := cluster.StartEnvtest(envtestOptions)
	if !errors.Is(err, cluster.ErrAssetsMissing) || !strings.Contains(err.Error(), "make test-assets") {
		t.Fatalf("StartEnvtest without binaries: want ErrAssetsMissing pointing to make test-assets, got %v", err)
	}
	_, err = cluster.StartSimulated(cluster.SimulatedOptions{})
	if !errors.Is(err, cluster.ErrAssetsMissing) {
		t.Fatalf("StartSimulated without binaries: want ErrAssetsMissing, got %v", err)
	}
}

// assertLoopbackKubernetesService checks the safety rule: Services get
// loopback ClusterIPs.
func assertLoopbackKubernetesService(t *testing.T, cfg *rest.Config) {
	t.Helper()
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(cfg)
	svc, err := cs.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !loopback.Contains(ip) || !netip.MustParsePrefix(cluster.ServiceCIDR).Contains(ip) {
		t.Fatalf("kubernetes Service ClusterIP %q: want an address in %s (inside %s)", svc.Spec.ClusterIP, cluster.ServiceCIDR, loopback)
	}
}

// assertEstablished checks that the named CRDs are Established.
func assertEstablished(t *testing.T, cfg *rest.Config, names ...string) {
	t.Helper()
	ctx := t.Context()
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	for _, name := range names {
		crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("CRD %s: %v", name, err)
			continue
		}
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not Established: %+v", name, crd.Status.Conditions)
		}
	}
}

// waitDeployment waits until the Deployment is Available with want ready
// replicas.
func waitDeployment(t *testing.T, cs kubernetes.Interface, ns, name string, want int32) {
	t.Helper()
	var last *appsv1.Deployment
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = d
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				return d.Status.ReadyReplicas == want && d.Status.AvailableReplicas == want, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if last != nil {
			t.Fatalf("Deployment %s/%s not Available with %d ready replicas: %v; status %+v", ns, name, want, err, last.Status)
		}
		t.Fatalf("Deployment %s/%s: %v", ns, name, err)
	}
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("# placeholder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
