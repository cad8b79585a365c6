package manager

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/meshplane/test/cluster"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls url until check accepts the answer or the deadline passes.
func waitFor(t *testing.T, url string, check func(code int, body string) bool) (int, string) {
	t.Helper()
	var code int
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		code, body, err = get(url)
		if err == nil && check(code, body) {
			return code, body
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: last answer %d %q", url, code, body)
	return 0, ""
}

func startManager(t *testing.T, o Options) {
	t.Helper()
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true, SkipMeshplaneCRDs: o.OperatorNamespace == "no-crds"}})
	o.OperatorNamespace = "meshplane-system"
	mgr, err := New(srv.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with %v", err)
		}
	})
}

func TestManagerServesProbesAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	o := Options{MetricsAddr: freeAddr(t), ProbeAddr: freeAddr(t), SyncPeriod: time.Hour, WatchNamespaces: []string{"shop", "payments"}}
	startManager(t, o)
	waitFor(t, "http://"+o.ProbeAddr+"/healthz", func(c int, _ string) bool { return c == http.StatusOK })
	waitFor(t, "http://"+o.ProbeAddr+"/readyz", func(c int, _ string) bool { return c == http.StatusOK })
	_, body := waitFor(t, "http://"+o.MetricsAddr+"/metrics", func(c int, b string) bool {
		return c == http.StatusOK && strings.Contains(b, "go_goroutines")
	})
	for _, want := range []string{`meshplane_build_info{goversion=`, `meshplane_provider_registered{provider="Cilium"} 1`,
		`meshplane_provider_registered{provider="Istio"} 1`, `meshplane_provider_registered{provider="Linkerd"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestManagerNotReadyWithoutCRDs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	o := Options{MetricsAddr: "0", ProbeAddr: freeAddr(t), SyncPeriod: time.Hour, OperatorNamespace: "no-crds"}
	startManager(t, o)
	_, body := waitFor(t, "http://"+o.ProbeAddr+"/readyz?verbose", func(c int, b string) bool {
		return c == http.StatusInternalServerError && strings.Contains(b, "crds")
	})
	if !strings.Contains(body, "[-]crds failed") {
		t.Errorf("readyz does not name the failing check:\n%s", body)
	}
	// healthz stays OK: the process is alive, only not ready.
	if code, _, err := get("http://" + o.ProbeAddr + "/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("healthz = %d, %v", code, err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
		check   func(Options) error
	}{
		{args: nil, check: func(o Options) error {
			if o.MetricsAddr != ":8443" || !o.SecureMetrics || o.ProbeAddr != ":8081" || o.LeaderElect || o.OperatorNamespace != "meshplane-system" {
				return fmt.Errorf("defaults: %+v", o)
			}
			return nil
		}},
		{args: []string{"--watch-namespaces", "shop, payments,,", "--leader-elect"}, check: func(o Options) error {
			if len(o.WatchNamespaces) != 2 || o.WatchNamespaces[1] != "payments" || !o.LeaderElect {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}},
		{args: []string{"--watch-namespaces", "Shop"}, wantErr: `namespace "Shop" is not valid`},
		{args: []string{"--operator-namespace", "meshplane_system"}, wantErr: `namespace "meshplane_system" is not valid`},
		{args: []string{"--sync-period", "10s"}, wantErr: "--sync-period 10s is too short"},
		{args: []string{"--metrics-server", "prometheus:9090"}, wantErr: "--metrics-server \"prometheus:9090\" must be an http:// or https:// address"},
		{args: []string{"--metrics-server", "http://prometheus.monitoring:9090"}, check: func(o Options) error {
			if o.MetricsServer != "http://prometheus.monitoring:9090" {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}},
	} {
		var o Options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: want %q, got %v", tc.args, tc.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
		} else if err := tc.check(o); err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
}
