package e2e

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestProxyPolicy runs a ProxyPolicy on the simulated cluster, where
// Deployments really roll (kube-controller-manager, kwok pods): with
// batchSize 1 the three workloads of an Istio sidecar namespace get the
// proxy resource annotations one at a time — never two rolling at once —,
// every running pod ends up carrying them, and deleting the policy puts
// the pod templates back exactly (and the pods roll back).
func TestProxyPolicy(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	c := harness.StartManager(t, sim.Config).Client
	const ns = "proxy-shop"
	makeApps(t, c, []string{ns}, map[string]string{"istio-injection": "enabled"}, 3)
	harness.Eventually(t, 60*time.Second, "apps available", func() error { return allAvailable(c, []string{ns}) })
	templates := map[string]map[string]string{}
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		templates[d.Name] = d.Spec.Template.Annotations
	}

	start := time.Now()
	p := &meshv1alpha1.ProxyPolicy{ObjectMeta: metav1.ObjectMeta{Name: "proxies", Namespace: ns},
		Spec: meshv1alpha1.ProxyPolicySpec{
			Resources: &meshv1alpha1.ProxyResources{CPURequest: "100m", MemoryLimit: "256Mi"},
			Rollout:   &meshv1alpha1.ProxyRollout{BatchSize: ptr.To[int32](1)}}}
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Poll the rollout: at most one workload is written but not rolled
	// out at any time.
	maxRolling := 0
	harness.Eventually(t, 120*time.Second, "every workload rolled out with the annotations", func() error {
		if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			return err
		}
		rolling, done := 0, 0
		for _, d := range deps.Items {
			if d.Spec.Template.Annotations["sidecar.istio.io/proxyCPU"] != "100m" {
				continue
			}
			if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 1 || d.Status.AvailableReplicas != 1 || d.Status.Replicas != 1 {
				rolling++
				continue
			}
			done++
		}
		maxRolling = max(maxRolling, rolling)
		if done != 3 {
			return fmt.Errorf("%d rolled out, %d rolling", done, rolling)
		}
		return readyProxy(c, p)
	})
	rolled := time.Since(start)
	if maxRolling > 1 {
		t.Fatalf("%d workloads rolled at once with batchSize 1", maxRolling)
	}
	harness.Eventually(t, 60*time.Second, "every running pod carries the proxy settings", func() error {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		n := 0
		for _, pod := range pods.Items {
			if !pod.DeletionTimestamp.IsZero() {
				continue
			}
			if pod.Annotations["sidecar.istio.io/proxyCPU"] != "100m" || pod.Annotations["sidecar.istio.io/proxyMemoryLimit"] != "256Mi" {
				return fmt.Errorf("pod %s annotations %v", pod.Name, pod.Annotations)
			}
			n++
		}
		if n != 3 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

	if err := c.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 60*time.Second, "pod templates restored and rolled back", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), &meshv1alpha1.ProxyPolicy{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("policy: %v", err)
		}
		if err := c.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, d := range deps.Items {
			if fmt.Sprint(d.Spec.Template.Annotations) != fmt.Sprint(templates[d.Name]) {
				return fmt.Errorf("%s template annotations %v, were %v", d.Name, d.Spec.Template.Annotations, templates[d.Name])
			}
		}
		return allAvailable(c, []string{ns})
	})
	t.Logf("3 workloads rolled one at a time in %s; restored in %s", rolled.Round(10*time.Millisecond), (time.Since(start) - rolled).Round(10*time.Millisecond))
}

func readyProxy(c client.Client, p *meshv1alpha1.ProxyPolicy) error {
	cur := &meshv1alpha1.ProxyPolicy{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
		return err
	}
	r := apimeta.FindStatusCondition(cur.Status.Conditions, meshv1alpha1.ReadyCondition)
	if r == nil || r.Status != metav1.ConditionTrue || cur.Status.ObservedGeneration != cur.Generation {
		return fmt.Errorf("Ready %+v", r)
	}
	return nil
}
