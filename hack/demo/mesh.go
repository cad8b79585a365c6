package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
)

// demoVersions are the Istio versions the demo's chart repository serves.
var demoVersions = []string{"1.28.1", "1.29.0"}

// demoNamespaces are meshed by the demo.
var demoNamespaces = []string{"shop", "payments", "search", "reviews"}

// sampleSkipped says why the demo leaves a sample of config/samples out
// ("" when it applies it): every sample it applies must reach Ready. The
// API tests validate all of them.
func sampleSkipped(path string) string {
	b := filepath.Base(path)
	switch {
	case strings.Contains(b, "meshinstall"):
		return "names a public chart repository (the demo never leaves this machine); Istio is installed below from a local chart repository"
	case strings.Contains(b, "meshrevision"):
		return "MeshRevisions are created by the MeshInstall controller; the RevisionBased upgrade below creates them"
	case strings.Contains(b, "breakglass"):
		// The BreakGlass sample would disable the demo's mesh.
		return "would disable the demo's mesh; the break-glass step below shows one on its own namespace"
	case strings.Contains(b, "meshfederation"):
		return "needs the kubeconfig Secrets of remote clusters, which the demo does not run"
	case strings.Contains(b, "trafficsplit"), strings.Contains(b, "zerotrustpolicy"), strings.Contains(b, "canary"), strings.Contains(b, "resiliencepolicy"):
		return "targets namespace default, which no mesh serves (it would stay Stalled); the same kinds are shown below in namespaces Istio serves"
	}
	return ""
}

// demoMesh installs Istio 1.28.1 from the local chart repository with a
// RevisionBased MeshInstall, meshes four namespaces, then upgrades to
// 1.29.0 and prints each phase and batch.
func demoMesh(ctx context.Context, c client.Client, st *state) error {
	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, st.InjectorURL, st.InjectorCA)
	mi := &meshv1alpha1.MeshInstall{
		TypeMeta:   metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "MeshInstall"},
		ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{
			Provider: meshv1alpha1.ProviderIstio, Version: demoVersions[0],
			Chart:  &meshv1alpha1.ChartSource{Repository: st.ChartRepo},
			Values: &apiextensionsv1.JSON{Raw: []byte(values)},
			Upgrade: &meshv1alpha1.UpgradeSpec{
				Strategy:          meshv1alpha1.UpgradeRevisionBased,
				RevisionRetention: &metav1.Duration{Duration: time.Second},
				Rollout:           &meshv1alpha1.WorkloadRolloutPlan{BatchSize: 2, HealthTimeout: &metav1.Duration{Duration: time.Minute}},
			},
		},
	}
	var cur meshv1alpha1.MeshInstall
	if err := c.Get(ctx, client.ObjectKey{Name: "istio"}, &cur); err == nil && cur.Status.InstalledVersion == demoVersions[1] {
		step("Istio %s is already installed and upgraded (kubectl get meshinstall istio)", cur.Status.InstalledVersion)
		return nil
	}
	step("installing Istio %s with a RevisionBased MeshInstall from the local chart repository %s", demoVersions[0], st.ChartRepo)
	start := time.Now()
	if err := ssa(ctx, c, mi); err != nil {
		return fmt.Errorf("applying MeshInstall istio: %w", err)
	}
	if err := waitMesh(ctx, c, func(mi *meshv1alpha1.MeshInstall) bool {
		return isReady(mi) && mi.Status.InstalledVersion == demoVersions[0]
	}); err != nil {
		return err
	}
	step("Istio %s Ready in %s (active revision 1-28-1)", demoVersions[0], time.Since(start).Round(10*time.Millisecond))

	step("meshing namespaces %v: label istio.io/rev=1-28-1, one 2-replica Deployment each", demoNamespaces)
	for _, ns := range demoNamespaces {
		n := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio.io/rev": "1-28-1"}}}
		if err := ssa(ctx, c, n); err != nil {
			return err
		}
		if err := demoApp(ctx, c, ns); err != nil {
			return err
		}
	}
	step("upgrading to %s: new revision beside the old, default tag moved when Ready, namespaces in batches of 2", demoVersions[1])
	start = time.Now()
	patch := []byte(fmt.Sprintf(`{"spec":{"version":%q}}`, demoVersions[1]))
	if err := c.Patch(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}}, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		return err
	}
	last := ""
	err := waitMesh(ctx, c, func(mi *meshv1alpha1.MeshInstall) bool {
		if u := mi.Status.Upgrade; u != nil {
			line := fmt.Sprintf("%-18s %d/%d namespaces  batch %v", u.Phase, u.MigratedNamespaces, u.TotalNamespaces, u.CurrentBatch)
			if line != last {
				fmt.Printf("    %6.2fs  %s\n", time.Since(start).Seconds(), line)
				last = line
			}
			return u.Phase == meshv1alpha1.UpgradeCompleted && isReady(mi)
		}
		return false
	})
	if err != nil {
		return err
	}
	step("upgrade completed in %s: every pod runs revision 1-29-0 and revision 1-28-1 was removed", time.Since(start).Round(10*time.Millisecond))
	return nil
}

func demoApp(ctx context.Context, c client.Client, ns string) error {
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web:1"}}},
			},
		},
	}
	return ssa(ctx, c, d)
}

func isReady(mi *meshv1alpha1.MeshInstall) bool {
	cd := apimeta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ReadyCondition)
	return cd != nil && cd.Status == metav1.ConditionTrue && mi.Status.ObservedGeneration == mi.Generation
}

func waitMesh(ctx context.Context, c client.Client, ok func(*meshv1alpha1.MeshInstall) bool) error {
	for {
		var mi meshv1alpha1.MeshInstall
		if err := c.Get(ctx, client.ObjectKey{Name: "istio"}, &mi); err == nil && ok(&mi) {
			return nil
		}
		select {
		case <-ctx.Done():
			cd := apimeta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ReadyCondition)
			return fmt.Errorf("MeshInstall istio did not get there: Ready=%+v", cd)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ssa server-side applies o with the demo's field manager, as kubectl
// apply --server-side would, and reads it back into o.
func ssa(ctx context.Context, c client.Client, o client.Object) error {
	u, err := apply.ToUnstructured(o, c.Scheme())
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return err
	}
	return c.Get(ctx, client.ObjectKeyFromObject(o), o)
}
