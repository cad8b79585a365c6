package manager_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestCacheHoldsNoManagedFields checks that the manager's cache strips
// managedFields (a third of a cached object's memory, never read from the
// cache) from every kind, typed and metadata-only alike, while the API
// server keeps them.
func TestCacheHoldsNoManagedFields(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	o := &manager.Options{MetricsAddr: "0", ProbeAddr: "0", SyncPeriod: time.Hour}
	m := startManager(t, o, false)
	ctx := context.Background()
	ns := testenv.Namespace(t, m.Client, nil)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}}
	port := int32(8080)
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web", Port: &port},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web", Weight: 100}}}}
	for _, obj := range []client.Object{svc, ts} {
		testenv.Must(t, m.Client.Create(ctx, obj))
		if len(obj.GetManagedFields()) == 0 {
			t.Fatalf("the API server returned %T without managedFields: the test would prove nothing", obj)
		}
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
	for _, obj := range []client.Object{&corev1.Service{}, &meshv1alpha1.TrafficSplit{}, meta} {
		testenv.Eventually(t, testenv.DefaultTimeout, fmt.Sprintf("%T in the cache", obj), func() error {
			return m.GetCache().Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, obj)
		})
		if mf := obj.GetManagedFields(); len(mf) != 0 {
			t.Errorf("the cache holds %T %s/web with %d managedFields entries; want none (cache.Options.DefaultTransform)", obj, ns, len(mf))
		}
	}
}
