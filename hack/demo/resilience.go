package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// showResilience applies a ResiliencePolicy next to the TrafficSplit
// reviews of the demo namespace (which sets retries and a timeout, so the
// policy brings pools, outlier detection, load balancing and a
// header-matched fault), waits until it is Ready and prints the one
// composed VirtualService, the policy's DestinationRule and the per-field
// report.
func showResilience(ctx context.Context, c client.Client) error {
	step("applying ResiliencePolicy %s/reviews next to TrafficSplit %[1]s/reviews", demoMeshNamespace)
	hundred, five, fifty := int32(100), int32(5), int32(50)
	rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: demoMeshNamespace},
		Spec: meshv1alpha1.ResiliencePolicySpec{
			TargetRef:        meshv1alpha1.ServiceReference{Name: "reviews"},
			ConnectionPool:   &meshv1alpha1.ConnectionPool{MaxConnections: &hundred, ConnectTimeout: &metav1.Duration{Duration: 2 * time.Second}},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: &five, MaxEjectionPercent: &fifty},
			LoadBalancer:     &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest, Warmup: &metav1.Duration{Duration: 30 * time.Second}},
			FaultInjection: &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 50},
				Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-chaos", Value: "on"}}},
		}}
	if err := c.Create(ctx, rp); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating ResiliencePolicy reviews: %w", err)
	}
	key := client.ObjectKeyFromObject(rp)
	for {
		_ = c.Get(ctx, key, rp)
		if status.IsTrue(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition) && rp.Status.ObservedGeneration == rp.Generation && rp.Status.ComposedWith != "" {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ResiliencePolicy %s not Ready and composed: %v", key, status.Get(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("\nResiliencePolicy %s is Ready on %s, composed with TrafficSplit %s: one VirtualService for host reviews.\n",
		key, rp.Status.Provider, rp.Status.ComposedWith)
	fmt.Println("Per-field report (selected mesh decides; the others say what a move would keep):")
	for _, s := range rp.Status.Support {
		fmt.Printf("  %-40s %-8s %-8s %s\n", s.Field, s.Provider, s.State, s.Detail)
	}
	fmt.Println("Composed and owned outputs:")
	refs := append([]meshv1alpha1.ObjectReference{{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: demoMeshNamespace, Name: rp.Status.ComposedWith}},
		rp.Status.Inventory...)
	for _, ref := range refs {
		if err := printObject(ctx, c, ref); err != nil {
			return err
		}
	}
	return nil
}

// printObject prints one object as YAML without its server-set metadata.
func printObject(ctx context.Context, c client.Client, ref meshv1alpha1.ObjectReference) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(ref.APIVersion)
	u.SetKind(ref.Kind)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u); err != nil {
		return err
	}
	u.SetManagedFields(nil)
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		return err
	}
	fmt.Printf("---\n%s", b)
	return nil
}
