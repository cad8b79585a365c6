package manager_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

const badCanary = `
apiVersion: meshplane.io/v1alpha1
kind: Canary
metadata: {name: stored-bad, namespace: NS}
spec:
  targetRef: {name: podinfo}
  service: {port: 9898}
  progressDeadline: banana
  analysis: {stepWeight: 10, interval: 1y}
`

const badMeshInstall = `
apiVersion: meshplane.io/v1alpha1
kind: MeshInstall
metadata: {name: stored-bad}
spec:
  provider: Istio
  version: 1.28.1
  upgrade: {rollout: {healthTimeout: 5 minutes}}
`

const badTrafficSplit = `
apiVersion: meshplane.io/v1alpha1
kind: TrafficSplit
metadata: {name: stored-bad, namespace: NS}
spec:
  service: {name: reviews, port: 9080}
  backends: [{name: reviews-v1, weight: 100}]
  timeout: -5s
`

func goodCanary(ns string) *meshv1alpha1.Canary {
	return &meshv1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "good"},
		Spec: meshv1alpha1.CanarySpec{
			TargetRef: meshv1alpha1.CanaryTargetReference{Name: "podinfo"},
			Service:   meshv1alpha1.CanaryService{Port: 9898},
			Analysis:  meshv1alpha1.CanaryAnalysis{StepWeight: ptr[int32](10)},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// reconciled waits until obj carries a Ready condition of its current
// generation: its controller's cache synced and it reconciled obj.
func reconciled(t *testing.T, c client.Client, obj status.Object) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, "a reconcile of "+obj.GetName()+" in "+obj.GetNamespace(), func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		rd := status.Get(obj.GetCommonStatus(), meshv1alpha1.ReadyCondition)
		if rd == nil || rd.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("not reconciled: %+v", obj.GetCommonStatus().Conditions)
		}
		return nil
	})
}

// stalledUndecodable waits until obj is Stalled InvalidSpec with a message
// naming want.
func stalledUndecodable(t *testing.T, c client.Client, obj status.Object, want ...string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, obj.GetName()+" Stalled as undecodable", func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		st := status.Get(obj.GetCommonStatus(), meshv1alpha1.StalledCondition)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != meshv1alpha1.InvalidSpecReason {
			return fmt.Errorf("conditions %+v", obj.GetCommonStatus().Conditions)
		}
		for _, w := range want {
			if !strings.Contains(st.Message, w) {
				return fmt.Errorf("message %q lacks %q", st.Message, w)
			}
		}
		return nil
	})
}

// undecodableGauge reads meshplane_undecodable_objects{kind} from a
// collector on the manager's cache.
func undecodableGauge(t *testing.T, m *testenv.Manager, kind string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(m.GetCache()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meshplane_undecodable_objects" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return mt.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no meshplane_undecodable_objects{kind=%q}", kind)
	return 0
}

// TestStoredUndecodableObjectsStopNothing stores a Canary and a MeshInstall
// whose durations do not parse, as written before the CRDs validated them,
// then starts the manager with every controller: it starts (the bad
// MeshInstall used to make it exit "timed out waiting for cache to be
// synced"), Canaries in other namespaces reconcile (one bad Canary used to
// stop every Canary), the bad objects are Stalled naming the field, the
// stored value and the fix, and counted in meshplane_undecodable_objects.
// A bad TrafficSplit stored while the manager runs does the same through
// the watch.
func TestStoredUndecodableObjectsStopNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	srv := cluster.UseServer(t, cluster.EnvtestOptions{})
	c := testenv.NewClient(t, srv.Config)
	ctx := context.Background()
	badNS := testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
	testenv.StoreUnvalidated(t, c, testenv.Parse(t, strings.ReplaceAll(badCanary, "NS", badNS)))
	testenv.StoreUnvalidated(t, c, testenv.Parse(t, badMeshInstall))
	otherNS := testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
	before := goodCanary(otherNS)
	if err := c.Create(ctx, before); err != nil {
		t.Fatal(err)
	}

	m := harness.StartManager(t, srv.Config)
	reconciled(t, c, before)
	stalledUndecodable(t, c, &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: badNS, Name: "stored-bad"}},
		`spec.analysis.interval: "1y" is not a duration`, `spec.progressDeadline: "banana" is not a duration`,
		"set a duration such as 30s, 5m or 1h30m", "kubectl edit canary/stored-bad -n "+badNS)
	stalledUndecodable(t, c, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "stored-bad"}},
		`spec.upgrade.rollout.healthTimeout: "5 minutes" is not a duration`, "kubectl edit meshinstall/stored-bad")

	// Objects created after the start, in a third namespace and next to the
	// bad one, reconcile too.
	third := goodCanary(testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"}))
	beside := goodCanary(badNS)
	for _, cn := range []*meshv1alpha1.Canary{third, beside} {
		if err := c.Create(ctx, cn); err != nil {
			t.Fatal(err)
		}
		reconciled(t, c, cn)
	}

	// Stored while the manager runs: the watch delivers it.
	testenv.StoreUnvalidated(t, c, testenv.Parse(t, strings.ReplaceAll(badTrafficSplit, "NS", otherNS)))
	stalledUndecodable(t, c, &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Namespace: otherNS, Name: "stored-bad"}},
		`spec.timeout: "-5s" is negative; set a duration such as 30s, 5m or 1h30m`)
	// meshplane_undecodable_objects counts them.
	testenv.Eventually(t, testenv.DefaultTimeout, "meshplane_undecodable_objects", func() error {
		for kind, want := range map[string]float64{"Canary": 1, "MeshInstall": 1, "TrafficSplit": 1, "ZeroTrustPolicy": 0} {
			if got := undecodableGauge(t, m, kind); got != want {
				return fmt.Errorf("meshplane_undecodable_objects{kind=%q} = %v, want %v", kind, got, want)
			}
		}
		return nil
	})
}
