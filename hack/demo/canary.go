package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// scriptedProm is a minimal Prometheus-compatible instant-query API on
// 127.0.0.1 that answers every query with one value the demo scripts.
type scriptedProm struct {
	URL   string
	value atomic.Uint64 // math.Float64bits
	srv   *http.Server
}

func startScriptedProm() (*scriptedProm, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &scriptedProm{URL: "http://" + l.Addr().String()}
	p.set(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		v := strconv.FormatFloat(p.get(), 'f', -1, 64)
		now := float64(time.Now().UnixMilli()) / 1000
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{
			"resultType": "vector", "result": []any{map[string]any{"metric": map[string]string{}, "value": []any{now, v}}}}})
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *scriptedProm) set(v float64) { p.value.Store(math.Float64bits(v)) }
func (p *scriptedProm) get() float64  { return math.Float64frombits(p.value.Load()) }
func (p *scriptedProm) close()        { _ = p.srv.Close() }

// showCanary delivers two revisions of a Deployment in the demo's Istio
// namespace with a Canary analysed against a scripted metrics server: the
// first passes and is promoted, the second fails its check and is rolled
// back. It prints the phases and weights as they change.
func showCanary(ctx context.Context, c client.Client) error {
	prom, err := startScriptedProm()
	if err != nil {
		return err
	}
	defer prom.close()
	const ns, name = demoMeshNamespace, "checkout"
	step("Canary %s/%s: a Deployment delivered through Istio, analysed every second against a scripted metrics server on %s", ns, name, prom.URL)
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "example.invalid/checkout:1.0"}}},
			},
		},
	}
	cn := &meshv1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.CanarySpec{
			TargetRef: meshv1alpha1.CanaryTargetReference{Name: name},
			Service:   meshv1alpha1.CanaryService{Port: 8080},
			Strategy:  meshv1alpha1.StrategyCanary,
			Analysis: meshv1alpha1.CanaryAnalysis{
				Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
				StepWeights: []int32{10, 30, 50}, MaxWeight: ptr(int32(50)),
				MetricsServer: &meshv1alpha1.MetricsServer{Address: prom.URL},
				Metrics: []meshv1alpha1.CanaryMetric{{Name: "request-success-rate",
					ThresholdRange: meshv1alpha1.ThresholdRange{Min: ptr("99")}}},
			},
		},
	}
	for _, o := range []client.Object{d, cn} {
		if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	key := client.ObjectKeyFromObject(cn)
	if _, err := watchCanary(ctx, c, key, meshv1alpha1.CanaryPhaseInitialized, nil); err != nil {
		return err
	}
	step("new revision checkout:1.1 (success rate 100%%): analysed step by step, then promoted")
	if err := setImage(ctx, c, key, "example.invalid/checkout:1.1"); err != nil {
		return err
	}
	if _, err := watchCanary(ctx, c, key, meshv1alpha1.CanaryPhaseSucceeded, nil); err != nil {
		return err
	}
	step("new revision checkout:2.0 whose success rate drops to 42%% once it takes traffic: rolled back")
	if err := setImage(ctx, c, key, "example.invalid/checkout:2.0"); err != nil {
		return err
	}
	got, err := watchCanary(ctx, c, key, meshv1alpha1.CanaryPhaseFailed, func(cur *meshv1alpha1.Canary) {
		if cur.Status.CanaryWeight > 0 {
			prom.set(42)
		}
	})
	if err != nil {
		return err
	}
	var primary appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-primary"}, &primary); err != nil {
		return err
	}
	fmt.Printf("\nCanary %s/%s rolled back: %s\nThe primary still runs %s; canary weight %d%%.\n", ns, name, got.Status.Message,
		primary.Spec.Template.Spec.Containers[0].Image, got.Status.CanaryWeight)
	return nil
}

func setImage(ctx context.Context, c client.Client, key client.ObjectKey, image string) error {
	for {
		var d appsv1.Deployment
		if err := c.Get(ctx, key, &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		err := c.Update(ctx, &d)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchCanary prints each change of phase, weight or iteration until the
// Canary reaches phase.
func watchCanary(ctx context.Context, c client.Client, key client.ObjectKey, phase meshv1alpha1.CanaryPhase, each func(*meshv1alpha1.Canary)) (*meshv1alpha1.Canary, error) {
	last := ""
	start := time.Now()
	for {
		cur := &meshv1alpha1.Canary{}
		if err := c.Get(ctx, key, cur); err != nil {
			return nil, err
		}
		line := fmt.Sprintf("%-16s weight %3d%%  step %d  failed checks %d", cur.Status.Phase, cur.Status.CanaryWeight, cur.Status.Iterations, cur.Status.FailedChecks)
		if line != last {
			fmt.Printf("    %6.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		if each != nil {
			each(cur)
		}
		if cur.Status.Phase == phase {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the Canary %s did not reach %s: phase %s, %s", key, phase, cur.Status.Phase, cur.Status.Message)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
