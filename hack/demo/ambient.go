package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// demoAmbientNamespace is the ambient namespace the demo shows beside the
// sidecar namespace demoMeshNamespace, under the same MeshInstall.
const demoAmbientNamespace = "demo-ambient"

// showAmbient switches MeshInstall istio to profile Ambient with a
// waypoint for namespace demo-ambient (ztunnel and istio-cni join the
// control plane; the sidecar namespaces keep their sidecars), then applies
// a TrafficSplit and an L7 ZeroTrustPolicy there and prints what serves
// each namespace.
func showAmbient(ctx context.Context, c client.Client) error {
	step("enrolling namespace %s in ambient mode (istio.io/dataplane-mode=ambient) beside the sidecar namespace %s", demoAmbientNamespace, demoMeshNamespace)
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoAmbientNamespace,
		Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}}}
	for _, n := range []string{"ratings", "ratings-v1", "ratings-v2"} {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: demoAmbientNamespace},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": n}, Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}})
	}
	if err := createAll(ctx, c, objs); err != nil {
		return err
	}
	step("MeshInstall istio: profile Ambient, spec.istio.waypoints [{namespace: %s}]", demoAmbientNamespace)
	patch := []byte(fmt.Sprintf(`{"spec":{"profile":"Ambient","istio":{"waypoints":[{"namespace":%q}]}}}`, demoAmbientNamespace))
	if err := c.Patch(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		return err
	}
	var mi meshv1alpha1.MeshInstall
	if err := waitMesh(ctx, c, func(m *meshv1alpha1.MeshInstall) bool {
		mi = *m
		return isReady(m) && len(m.Status.Waypoints) == 1
	}); err != nil {
		return err
	}
	port := int32(9080)
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: demoAmbientNamespace},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "ratings", Port: &port},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "ratings-v1", Weight: 80}, {Name: "ratings-v2", Weight: 20}}}}
	zt := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: demoAmbientNamespace},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{Name: "reviews-reads",
			From: []meshv1alpha1.TrafficSource{{Namespaces: []string{demoMeshNamespace}}},
			To: []meshv1alpha1.TrafficDestination{{Ports: []int32{9080}, Methods: []meshv1alpha1.HTTPMethod{"GET"},
				Paths: []string{"/ratings/*"}}}}}}}
	step("applying TrafficSplit %[1]s/ratings and an L7 ZeroTrustPolicy %[1]s/ratings (GET /ratings/* from %[2]s)", demoAmbientNamespace, demoMeshNamespace)
	if err := createAll(ctx, c, []client.Object{ts, zt}); err != nil {
		return err
	}
	if err := waitReadyPair(ctx, c, demoAmbientNamespace, "ratings", ts, zt); err != nil {
		return err
	}
	// The sidecar namespace under the same, now Ambient, MeshInstall.
	sts, szt := &meshv1alpha1.TrafficSplit{}, &meshv1alpha1.ZeroTrustPolicy{}
	if err := waitReadyPair(ctx, c, demoMeshNamespace, "reviews", sts, szt); err != nil {
		return err
	}
	w := mi.Status.Waypoints[0]
	programmed := "programmed"
	if !w.Programmed {
		programmed = "not programmed, as no istiod runs in the simulated cluster: " + w.Message
	}
	fmt.Printf("\nOne MeshInstall, two data planes:\n")
	fmt.Printf("  %-14s sidecar  TrafficSplit and ZeroTrustPolicy reviews Ready (%s)\n", demoMeshNamespace, kinds(append(sts.Status.Inventory, szt.Status.Inventory...)))
	fmt.Printf("  %-14s ambient  waypoint %s (Gateway class istio-waypoint, deployed by MeshInstall istio; %s)\n", demoAmbientNamespace, w.Name, programmed)
	fmt.Printf("  %-14s          TrafficSplit ratings Ready on the waypoint; ZeroTrustPolicy ratings Ready (%s)\n", "", zt.Status.Mode)
	fmt.Println("  outputs:")
	for _, ref := range append(ts.Status.Inventory, zt.Status.Inventory...) {
		fmt.Printf("    %s %s/%s\n", ref.Kind, ref.Namespace, ref.Name)
	}
	return nil
}

// kinds lists the kinds of refs, e.g. "VirtualService, AuthorizationPolicy".
func kinds(refs []meshv1alpha1.ObjectReference) string {
	var out []string
	for _, r := range refs {
		if !slices.Contains(out, r.Kind) {
			out = append(out, r.Kind)
		}
	}
	return strings.Join(out, ", ")
}

func createAll(ctx context.Context, c client.Client, objs []client.Object) error {
	for _, o := range objs {
		if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// waitReadyPair waits until TrafficSplit and ZeroTrustPolicy ns/name are
// Ready, reading them into ts and zt.
func waitReadyPair(ctx context.Context, c client.Client, ns, name string, ts *meshv1alpha1.TrafficSplit, zt *meshv1alpha1.ZeroTrustPolicy) error {
	key := client.ObjectKey{Namespace: ns, Name: name}
	for {
		_ = c.Get(ctx, key, ts)
		_ = c.Get(ctx, key, zt)
		if status.IsTrue(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition) && status.IsTrue(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("TrafficSplit and ZeroTrustPolicy %s/%s not Ready: %v / %v", ns, name,
				status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition), status.Get(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
