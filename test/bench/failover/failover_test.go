// Package failover benchmarks leader failover: two manager processes (the
// real cmd/manager binary) run against one envtest API server with leader
// election on and controller-runtime's default lease settings (15 s lease,
// 10 s renew deadline, 2 s retry). Each reaches the API server through its
// own counting proxy, so every request is known by process. The leader is
// killed with SIGKILL and every TrafficSplit changed at that moment; the
// benchmark reports the time until the standby has reconciled all of them
// (Ready at their new generation) and the writes the standby sent before
// it took the lease. Run with make bench.
package failover

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/bench/report"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

func init() { ctrl.SetLogger(logr.Discard()) }

// n is the number of TrafficSplits the new leader must reconcile.
var n = report.Count(200)

const ns = "bench"

// write is one non-read request a process sent.
type write struct {
	at   time.Time
	what string
}

// proxy forwards one process's requests to the API server (with the
// envtest client certificate) and records its writes.
type proxy struct {
	*httptest.Server
	mu     sync.Mutex
	writes []write
}

func newProxy(b *testing.B, cfg *rest.Config) *proxy {
	target, err := url.Parse(cfg.Host)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = rt
	rp.FlushInterval = -1 // watches stream
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
			p.mu.Lock()
			p.writes = append(p.writes, write{at: time.Now(), what: r.Method + " " + r.URL.Path})
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(p.Close)
	return p
}

// writesBefore returns the writes sent before t.
func (p *proxy) writesBefore(t time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, w := range p.writes {
		if w.at.Before(t) {
			out = append(out, w.what)
		}
	}
	return out
}

// firstLeaseWrite is when the process first wrote the lease (took it).
func (p *proxy) firstLeaseWrite() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.writes {
		if strings.Contains(w.what, "/leases/") || strings.HasSuffix(w.what, "/leases") {
			return w.at
		}
	}
	return time.Time{}
}

// kubeconfig writes a kubeconfig that reaches the API server through p.
func kubeconfig(b *testing.B, dir, name string, p *proxy) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: p.URL}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "manager"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// start runs the manager binary with leader election on (default lease
// settings) against kubeconfig.
func start(b *testing.B, bin, dir, name, kubeconfig string) *exec.Cmd {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--leader-elect", "--leader-election-namespace", testenv.OperatorNamespace,
		"--operator-namespace", testenv.OperatorNamespace, "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "MESHPLANE_CACHE_DIR="+filepath.Join(dir, name+"-cache"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
	})
	return cmd
}

func split(i int, weight int32) *meshv1alpha1.TrafficSplit {
	port := int32(8080)
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ts-%03d", i), Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: fmt.Sprintf("web-%03d", i), Port: &port},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 100 - weight}, {Name: "web-v2", Weight: weight}}}}
}

// waitReconciled waits until every TrafficSplit is Ready at its current
// generation and returns when.
func waitReconciled(b *testing.B, c client.Client, timeout time.Duration, logs ...string) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		var list meshv1alpha1.TrafficSplitList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		done := 0
		for i := range list.Items {
			ts := &list.Items[i]
			if ts.Status.ObservedGeneration == ts.Generation && apimeta.IsStatusConditionTrue(ts.Status.Conditions, meshv1alpha1.ReadyCondition) {
				done++
			}
		}
		if done == n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			for _, l := range logs {
				out, _ := os.ReadFile(l)
				b.Logf("%s (last 3000 bytes):\n%s", l, out[max(0, len(out)-3000):])
			}
			b.Fatalf("%d of %d TrafficSplits Ready at their generation after %s", done, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func BenchmarkLeaderFailover(b *testing.B) {
	cfg := cluster.UseEnvtest(b, cluster.EnvtestOptions{})
	ctx := context.Background()
	dir := b.TempDir()
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", bin, "github.com/meshplane/meshplane/cmd/manager")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building cmd/manager: %v\n%s", err, out)
	}
	c := testenv.NewClient(b, cfg)
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testenv.OperatorNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}},
	} {
		testenv.Must(b, c.Create(ctx, o))
	}
	// One routed Service per TrafficSplit (two routing one Service
	// conflict), the same two backends.
	svcs := []string{"web-v1", "web-v2"}
	for i := range n {
		svcs = append(svcs, fmt.Sprintf("web-%03d", i))
	}
	for _, s := range svcs {
		testenv.Must(b, c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s, Namespace: ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}}))
	}
	pa, pb := newProxy(b, cfg), newProxy(b, cfg)
	leader := start(b, bin, dir, "a", kubeconfig(b, dir, "a", pa))
	lease := client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: manager.LeaderElectionID}
	testenv.Eventually(b, 2*time.Minute, "the first manager leads", func() error {
		var l coordinationv1.Lease
		if err := c.Get(ctx, lease, &l); err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return fmt.Errorf("lease not held")
		}
		return nil
	})
	start(b, bin, dir, "b", kubeconfig(b, dir, "b", pb))
	for i := range n {
		testenv.Must(b, c.Create(ctx, split(i, 10)))
	}
	waitReconciled(b, c, 3*time.Minute, filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"))
	time.Sleep(5 * time.Second) // the standby has started and waits for the lease

	b.ResetTimer()
	killed := time.Now()
	if err := leader.Process.Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	// Every TrafficSplit changes as the leader dies.
	for i := range n {
		p := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"backends":[{"name":"web-v1","weight":80},{"name":"web-v2","weight":20}]}}`))
		testenv.Must(b, c.Patch(ctx, split(i, 0), p))
	}
	done := waitReconciled(b, c, 2*time.Minute, filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"))
	b.StopTimer()
	took := pb.firstLeaseWrite()
	if took.IsZero() {
		b.Fatal("the standby never wrote the lease")
	}
	early := pb.writesBefore(took)
	failover := done.Sub(killed)
	report.Print(fmt.Sprintf("Leader failover, 2 manager processes, %d TrafficSplits changed as the leader is SIGKILLed (default lease 15 s)", n),
		report.Goal{Name: "SIGKILL -> all reconciled by the new leader", Value: failover.Seconds(), Limit: 20, Unit: " s",
			Raw: fmt.Sprintf("standby took the lease after %s, all Ready at their new generation %s later", report.Seconds(took.Sub(killed)), report.Seconds(done.Sub(took)))},
		report.Goal{Name: "writes by the standby before it leads", Value: float64(len(early)), Limit: 0, Unit: "",
			Raw: fmt.Sprintf("%d writes before its first lease write %v; %d writes by the leader before it died", len(early), early, len(pa.writesBefore(killed)))},
	)
	b.ReportMetric(failover.Seconds(), "s-failover")
	b.ReportMetric(float64(len(early)), "standby-writes-before-leading")
}
