package outputs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestOutputKindInstalledLater starts the manager on a cluster without
// Istio's CRDs: a TrafficSplit in an Istio namespace waits with reason
// OutputKindMissing naming the VirtualService CRD. Once the CRDs are
// installed the split reconciles without a restart, and a deleted
// VirtualService is recreated (its kind is watched).
func TestOutputKindInstalledLater(t *testing.T) {
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{
		ThirdParty: []cluster.CRDSet{cluster.GatewayAPI, cluster.Cilium, cluster.Linkerd}}})
	c := testenv.NewClient(t, srv.Config)
	ctx := context.Background()
	harness.StartManager(t, srv.Config)
	ns := testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
	for _, name := range []string{"web", "web-v1", "web-v2"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
	if err := c.Create(ctx, ts); err != nil {
		t.Fatal(err)
	}
	ready := func(want metav1.ConditionStatus, reason, msg string) {
		t.Helper()
		testenv.Eventually(t, testenv.DefaultTimeout, fmt.Sprintf("Ready=%s/%s", want, reason), func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(ts), ts); err != nil {
				return err
			}
			rd := status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition)
			if rd == nil || rd.Status != want || (reason != "" && rd.Reason != reason) {
				return fmt.Errorf("conditions %s", testenv.Conditions(&ts.Status.CommonStatus))
			}
			if msg != "" && !strings.Contains(rd.Message, msg) {
				return fmt.Errorf("message %q lacks %q", rd.Message, msg)
			}
			return nil
		})
	}
	ready(metav1.ConditionFalse, meshv1alpha1.OutputKindMissingReason, "output kind VirtualService.networking.istio.io (CRD virtualservices.networking.istio.io) is not served by the API server: install that CRD")

	if err := cluster.InstallCRDs(srv.Config, cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio}, SkipMeshplaneCRDs: true}); err != nil {
		t.Fatal(err)
	}
	ready(metav1.ConditionTrue, "", "")
	vs := &istionetworking.VirtualService{}
	key := client.ObjectKey{Namespace: ns, Name: "web"}
	var uid string
	testenv.Eventually(t, testenv.DefaultTimeout, "the VirtualService", func() error {
		var l istionetworking.VirtualServiceList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(l.Items) != 1 {
			return fmt.Errorf("%d VirtualServices", len(l.Items))
		}
		vs = l.Items[0]
		key, uid = client.ObjectKeyFromObject(vs), string(vs.UID)
		return nil
	})
	if err := c.Delete(ctx, vs); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, "the deleted VirtualService recreated", func() error {
		got := &istionetworking.VirtualService{}
		if err := c.Get(ctx, key, got); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("not recreated")
			}
			return err
		}
		if string(got.UID) == uid {
			return fmt.Errorf("still the old one")
		}
		return nil
	})
}
