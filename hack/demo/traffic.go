package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// demoMeshNamespace is the namespace where the demo shows a TrafficSplit
// and a ZeroTrustPolicy rendered for Istio.
const demoMeshNamespace = "demo-shop"

// showTrafficAndPolicy applies a TrafficSplit and a ZeroTrustPolicy in a
// namespace enrolled in Istio, waits until both are Ready and prints the
// objects Meshplane rendered for them.
func showTrafficAndPolicy(ctx context.Context, c client.Client) error {
	step("applying a TrafficSplit and a ZeroTrustPolicy in namespace %s (istio-injection=enabled)", demoMeshNamespace)
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoMeshNamespace, Labels: map[string]string{"istio-injection": "enabled"}}}}
	for _, n := range []string{"reviews", "reviews-v1", "reviews-v2", "reviews-shadow"} {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: demoMeshNamespace},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}})
	}
	port := int32(9080)
	percent := int32(10)
	objs = append(objs,
		&meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: demoMeshNamespace},
			Spec: meshv1alpha1.TrafficSplitSpec{
				Service:  meshv1alpha1.ServiceReference{Name: "reviews", Port: &port},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "reviews-v1", Weight: 90}, {Name: "reviews-v2", Weight: 10}},
				Rules: []meshv1alpha1.TrafficRule{{Name: "beta-testers",
					Matches:  []meshv1alpha1.HTTPMatch{{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-user-group", Value: "beta"}}}},
					Backends: []meshv1alpha1.WeightedBackend{{Name: "reviews-v2", Weight: 100}}}},
				Mirror:  &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "reviews-shadow"}, Percent: &percent},
				Timeout: &metav1.Duration{Duration: 5 * time.Second},
				Retries: &meshv1alpha1.RetryPolicy{Attempts: 3, PerTryTimeout: &metav1.Duration{Duration: 2 * time.Second}, RetryOn: []meshv1alpha1.RetryOn{"5xx"}},
			}},
		&meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: demoMeshNamespace},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reviews"}},
				Rules: []meshv1alpha1.AllowRule{{Name: "productpage",
					From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"productpage"}}},
					To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{9080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}}}},
			}})
	for _, o := range objs {
		if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	ts := &meshv1alpha1.TrafficSplit{}
	zt := &meshv1alpha1.ZeroTrustPolicy{}
	for {
		_ = c.Get(ctx, client.ObjectKey{Namespace: demoMeshNamespace, Name: "reviews"}, ts)
		_ = c.Get(ctx, client.ObjectKey{Namespace: demoMeshNamespace, Name: "reviews"}, zt)
		if status.IsTrue(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition) && status.IsTrue(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("TrafficSplit and ZeroTrustPolicy %s/reviews not Ready: %v / %v", demoMeshNamespace,
				status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition), status.Get(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("\nTrafficSplit %s/reviews is Ready on %s (weights %s); ZeroTrustPolicy %s/reviews is Ready on %s (%s).\n",
		demoMeshNamespace, ts.Status.Provider, ts.Status.Weights, demoMeshNamespace, zt.Status.Provider, zt.Status.Mode)
	fmt.Println("Rendered outputs:")
	for _, ref := range append(ts.Status.Inventory, zt.Status.Inventory...) {
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
	}
	return nil
}
