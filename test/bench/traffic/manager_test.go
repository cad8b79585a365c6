package traffic

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshplane/meshplane/test/testenv"
)

// managerProc is cmd/manager built and run as its own process against the
// envtest API server, through a counting proxy, so its RSS is the manager's
// alone and its requests can be told apart by verb and resource.
type managerProc struct {
	cmd         *exec.Cmd
	metricsAddr string
	pprofAddr   string
	proxy       *countingProxy
	log         string
}

// builtDir holds the manager binary once built.
var builtDir string

// buildManager builds cmd/manager once per test binary run (TestMain
// removes it).
var buildManager = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "meshplane-bench-manager-")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/meshplane/meshplane/cmd/manager")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/manager: %w\n%s", err, out)
	}
	return bin, nil
})

// startManagerProcess runs the manager with every controller (as deployed),
// leader election off, plain-HTTP metrics, health probes and pprof on free
// loopback ports, and waits until it is ready.
func startManagerProcess(b *testing.B, cfg *rest.Config) *managerProc {
	bin, err := buildManager()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	p := &managerProc{metricsAddr: testenv.FreeAddr(b), pprofAddr: testenv.FreeAddr(b), proxy: startProxy(b, cfg), log: filepath.Join(dir, "manager.log")}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: %s\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: admin\nusers:\n- name: admin\n  user: {}\ncurrent-context: envtest\n", p.proxy.srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	probeAddr := testenv.FreeAddr(b)
	args := []string{"--metrics-bind-address=" + p.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address=" + probeAddr, "--pprof-bind-address=" + p.pprofAddr, "--leader-elect=false",
		"--sync-period=10h", "--zap-log-level=error"}
	if c := os.Getenv("MESHPLANE_BENCH_CONCURRENT"); c != "" {
		args = append(args, "--concurrent="+c) // e.g. "trafficsplit=16,zerotrustpolicy=16"
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "MESHPLANE_CACHE_DIR="+filepath.Join(dir, "helm"))
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		_ = logf.Close()
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, _, err := httpGet("http://" + probeAddr + "/readyz"); err == nil && code == http.StatusOK {
			return p
		}
		if p.cmd.ProcessState != nil || time.Now().After(deadline) {
			b.Fatalf("the manager did not become ready; its log:\n%s", tail(p.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(path string) string {
	out, _ := os.ReadFile(path)
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return string(out)
}

// raw describes r against r0, taken before n objects were created.
func (r rss) raw(r0 rss, n int, what string) string {
	return fmt.Sprintf("VmRSS %.0f MiB of which %.0f MiB anonymous (heap, stacks) and %.0f MiB the binary's file pages; before the objects %.0f MiB (%.0f anonymous); cache cost %.1f KiB anonymous per %s",
		r.total, r.anon, r.total-r.anon, r0.total, r0.anon, (r.anon-r0.anon)*1024/float64(n), what)
}

func httpGet(u string) (int, string, error) {
	resp, err := http.Get(u) //nolint:gosec // loopback address of the benchmark's own manager
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// rss is the manager process's resident set in MiB: VmRSS, and its
// anonymous part (heap, stacks: what grows with the cache; the rest is the
// binary's file pages).
type rss struct{ total, anon float64 }

func (p *managerProc) rss() rss {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return rss{}
	}
	var r rss
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			r.total = float64(kb) / 1024
		case "RssAnon:":
			r.anon = float64(kb) / 1024
		}
	}
	return r
}

// metric sums the samples of the named metric whose labels contain every
// one of match (e.g. `controller="trafficsplit"`), from the manager's
// /metrics.
func (p *managerProc) metric(b *testing.B, name string, match ...string) float64 {
	_, body, err := httpGet("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line, m)
		}
		if f := strings.Fields(line); ok && len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// reconciles is the number of TrafficSplit and ZeroTrustPolicy reconciles
// so far.
func (p *managerProc) reconciles(b *testing.B) float64 {
	return p.metric(b, "controller_runtime_reconcile_total", `controller="trafficsplit"`) +
		p.metric(b, "controller_runtime_reconcile_total", `controller="zerotrustpolicy"`)
}

// reconcileResults is reconciles by controller and result so far
// ("trafficsplit success": 612).
func (p *managerProc) reconcileResults(b *testing.B) map[string]float64 {
	out := map[string]float64{}
	for _, ctl := range []string{"trafficsplit", "zerotrustpolicy"} {
		for _, res := range []string{"success", "error", "requeue", "requeue_after"} {
			out[ctl+" "+res] = p.metric(b, "controller_runtime_reconcile_total", `controller="`+ctl+`"`, `result="`+res+`"`)
		}
	}
	return out
}

// since lists the non-zero differences of now against before.
func since(before, now map[string]float64) string {
	var parts []string
	for k, v := range now {
		if d := v - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, d))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// saveHeapProfile writes the manager's heap profile to
// $MESHPLANE_BENCH_PROFILE_DIR/<name>.heap when that is set.
func (p *managerProc) saveHeapProfile(b *testing.B, name string) {
	dir := os.Getenv("MESHPLANE_BENCH_PROFILE_DIR")
	if dir == "" {
		return
	}
	_, body, err := httpGet("http://" + p.pprofAddr + "/debug/pprof/heap")
	if err != nil {
		b.Logf("heap profile: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".heap"), []byte(body), 0o600); err != nil {
		b.Log(err)
	}
}

// startCPUProfile records the manager's CPU profile for d into
// $MESHPLANE_BENCH_PROFILE_DIR/<name>.cpu when that is set; the returned
// function waits for it.
func (p *managerProc) startCPUProfile(b *testing.B, name string, d time.Duration) func() {
	dir := os.Getenv("MESHPLANE_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, body, err := httpGet(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.pprofAddr, int(d.Seconds())))
		if err != nil {
			b.Logf("CPU profile: %v", err)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, name+".cpu"), []byte(body), 0o600); err != nil {
			b.Log(err)
		}
	}()
	return func() { <-done }
}

// countingProxy forwards the manager's requests to the API server and,
// while counting, tallies them by verb and resource.
type countingProxy struct {
	srv      *httptest.Server
	counting atomic.Bool
	total    atomic.Int64
	mu       sync.Mutex
	counts   map[string]int
}

func startProxy(b *testing.B, cfg *rest.Config) *countingProxy {
	// HTTP/1.1 to the API server: one connection per watch, as the
	// manager's own requests arrive; one HTTP/2 connection would cap the
	// streams of every request the manager sends at once.
	cfg = rest.CopyConfig(cfg)
	cfg.NextProtos = []string{"http/1.1"}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = rt
	rp.FlushInterval = -1 // watches stream
	p := &countingProxy{counts: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.total.Add(1)
		if p.counting.Load() {
			p.mu.Lock()
			p.counts[classify(r)]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(p.srv.Close)
	return p
}

// start resets the tallies and starts counting.
func (p *countingProxy) start() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.mu.Unlock()
	p.counting.Store(true)
}

// stop stops counting and returns the tallies ("get services": 3).
func (p *countingProxy) stop() map[string]int {
	p.counting.Store(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// classify names a request "<verb> <resource>[/<subresource>]": verbs get,
// list, watch, create, update, apply, patch, delete, with "dryrun-" before a
// dry-run write.
func classify(r *http.Request) string {
	path := strings.Trim(r.URL.Path, "/")
	seg := strings.Split(path, "/")
	switch {
	case len(seg) >= 2 && seg[0] == "api":
		seg = seg[2:]
	case len(seg) >= 3 && seg[0] == "apis":
		seg = seg[3:]
	default:
		return "discovery " + path
	}
	if len(seg) >= 3 && seg[0] == "namespaces" {
		seg = seg[2:]
	}
	if len(seg) == 0 {
		return "discovery " + path
	}
	resource := seg[0]
	if len(seg) >= 3 {
		resource += "/" + seg[2]
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodDelete: "delete", http.MethodPatch: "patch"}[r.Method]
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		verb = "watch"
	case r.Method == http.MethodGet && len(seg) >= 2:
		verb = "get"
	case r.Method == http.MethodGet:
		verb = "list"
	case r.Method == http.MethodPatch && strings.Contains(r.Header.Get("Content-Type"), "apply-patch"):
		verb = "apply"
	}
	if r.URL.Query().Has("dryRun") {
		verb = "dryrun-" + verb
	}
	return verb + " " + resource
}

// tally sums the counts whose verb is one of verbs, and lists them.
func tally(counts map[string]int, verbs ...string) (int, string) {
	total := 0
	var parts []string
	for k, v := range counts {
		verb, _, _ := strings.Cut(k, " ")
		for _, want := range verbs {
			if verb == want {
				total += v
				parts = append(parts, fmt.Sprintf("%d %s", v, k))
			}
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return 0, "none"
	}
	return total, strings.Join(parts, ", ")
}
