package manager_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls url until check accepts the answer or testenv's timeout
// passes, and returns the accepted answer.
func waitFor(t *testing.T, url string, check func(code int, body string) bool) (int, string) {
	t.Helper()
	var code int
	var body string
	testenv.Eventually(t, testenv.DefaultTimeout, url, func() error {
		var err error
		if code, body, err = get(url); err != nil {
			return err
		}
		if !check(code, body) {
			return fmt.Errorf("last answer %d %q", code, body)
		}
		return nil
	})
	return code, body
}

// startManager starts the manager on its own API server (with Meshplane's
// CRDs unless noCRDs) and fails the test if it does not stop cleanly. An
// empty MetricsAddr or ProbeAddr gets a free port once the API server runs
// (so the port is not taken while it starts).
func startManager(t *testing.T, o *manager.Options, noCRDs bool) *testenv.Manager {
	t.Helper()
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true, SkipMeshplaneCRDs: noCRDs}})
	if o.MetricsAddr == "" {
		o.MetricsAddr = testenv.FreeAddr(t)
	}
	if o.ProbeAddr == "" {
		o.ProbeAddr = testenv.FreeAddr(t)
	}
	return testenv.StartManager(testenv.Strict(t), srv.Config, testenv.ManagerOptions{Options: *o})
}

func TestManagerServesProbesAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	o := &manager.Options{SyncPeriod: time.Hour, WatchNamespaces: []string{"shop", "payments"}}
	startManager(t, o, false)
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
	o := &manager.Options{MetricsAddr: "0", SyncPeriod: time.Hour}
	startManager(t, o, true)
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

// TestEventRecorderName checks the one recorder-name scheme: an Event from
// EventRecorder("<kind>") reads meshplane-<kind> as its reporter.
func TestEventRecorderName(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	m := startManager(t, &manager.Options{MetricsAddr: "0", ProbeAddr: "0", SyncPeriod: time.Hour}, false)
	ctx := context.Background()
	ns := testenv.Namespace(t, m.Client, nil)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "subject", Namespace: ns}}
	if err := m.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	m.EventRecorder("trafficsplit").Eventf(cm, nil, corev1.EventTypeNormal, "Applied", "Apply", "applied %d outputs", 2)
	testenv.Eventually(t, testenv.DefaultTimeout, "the Event", func() error {
		var evs eventsv1.EventList
		if err := m.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason != "Applied" {
				continue
			}
			if e.ReportingController != "meshplane-trafficsplit" || e.Regarding.Name != "subject" || e.Note != "applied 2 outputs" || e.Action != "Apply" {
				return fmt.Errorf("event %s: reportingController %q, regarding %s, action %q, note %q", e.Name, e.ReportingController, e.Regarding.Name, e.Action, e.Note)
			}
			if !strings.HasPrefix(e.ReportingInstance, "meshplane-trafficsplit") {
				return fmt.Errorf("event %s: reportingInstance %q", e.Name, e.ReportingInstance)
			}
			return nil
		}
		return fmt.Errorf("no Applied event among %d", len(evs.Items))
	})
}
