package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// demoMigrateNamespace is the sidecar namespace the demo moves to ambient.
const demoMigrateNamespace = "demo-migrate"

// showMigration moves namespace demo-migrate from Istio sidecar to ambient
// with a MeshAdoption (mode Ambient): its ZeroTrustPolicy is checked for
// ambient before the wave starts, the namespace is relabelled, its
// workload restarted out of the sidecar behind the health gate, and the
// policy re-translated for ztunnel. Its policy is L4, so no waypoint is
// needed (one that needs L7 would get a waypoint first).
func showMigration(ctx context.Context, c client.Client) error {
	step("migrating namespace %s from Istio sidecar to ambient with a MeshAdoption", demoMigrateNamespace)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: demoMigrateNamespace},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web:1"}}}}}}
	zt := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: demoMigrateNamespace},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{Name: "from-demo",
			From: []meshv1alpha1.TrafficSource{{Namespaces: []string{demoMeshNamespace}}}, To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}}}}}}
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoMigrateNamespace,
		Labels: map[string]string{"istio-injection": "enabled"}}}, d, zt}
	if err := createAll(ctx, c, objs); err != nil {
		return err
	}
	if err := waitPolicy(ctx, c, zt); err != nil {
		return err
	}
	fmt.Printf("  before: namespace labels istio-injection=enabled; ZeroTrustPolicy web outputs %s\n", kinds(zt.Status.Inventory))
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "to-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Mode: meshv1alpha1.ProfileAmbient,
			Namespaces: []string{demoMigrateNamespace}, Waves: meshv1alpha1.AdoptionWaves{HealthTimeout: &metav1.Duration{Duration: time.Minute}}}}
	step("MeshAdoption to-ambient: meshInstallRef istio, mode Ambient, namespaces [%s]", demoMigrateNamespace)
	if err := createAll(ctx, c, []client.Object{ma}); err != nil {
		return err
	}
	for ma.Status.Phase != meshv1alpha1.AdoptionCompleted || !status.IsTrue(&ma.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("MeshAdoption to-ambient did not complete: phase %s, %v", ma.Status.Phase, status.Get(&ma.Status.CommonStatus, meshv1alpha1.StalledCondition))
		case <-time.After(200 * time.Millisecond):
		}
		_ = c.Get(ctx, client.ObjectKeyFromObject(ma), ma)
	}
	if err := waitPolicy(ctx, c, zt); err != nil {
		return err
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: demoMigrateNamespace}, &ns); err != nil {
		return err
	}
	w := ma.Status.Waves[len(ma.Status.Waves)-1]
	fmt.Printf("  wave %d %v: %s\n", w.Index, w.Namespaces, w.Message)
	fmt.Printf("  after:  namespace labels istio.io/dataplane-mode=%s, istio-injection=%q; workload restarted out of its sidecar\n",
		ns.Labels["istio.io/dataplane-mode"], ns.Labels["istio-injection"])
	fmt.Printf("          ZeroTrustPolicy web Ready in ambient (%s), outputs %s\n", zt.Status.Mode, kinds(zt.Status.Inventory))
	return nil
}

// waitPolicy waits until zt is Ready at its generation, reading it.
func waitPolicy(ctx context.Context, c client.Client, zt *meshv1alpha1.ZeroTrustPolicy) error {
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(zt), zt); err == nil &&
			status.IsTrue(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition) && zt.Status.ObservedGeneration == zt.Generation {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ZeroTrustPolicy %s/%s not Ready: %v", zt.Namespace, zt.Name, status.Get(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
