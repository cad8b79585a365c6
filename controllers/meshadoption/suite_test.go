package meshadoption_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshadoption"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

var ctx = context.Background()

// env is the package's API server with the real Meshplane CRDs.
var env testenv.Package

func TestMain(m *testing.M) {
	// The mesh CRDs (Gateway API for waypoints) serve the migration tests.
	testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{})
}

func startManager(t *testing.T, cfg *rest.Config) *testenv.Manager {
	t.Helper()
	return testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup)
}

// readyInstall creates a MeshInstall and reports it Ready, as the
// MeshInstall controller (not running here) would.
func readyInstall(t *testing.T, c client.Client, name string, p meshv1alpha1.Provider, profile meshv1alpha1.Profile) {
	t.Helper()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: p, Version: "1.28.1", Profile: profile}}
	if p == meshv1alpha1.ProviderLinkerd {
		mi.Spec.Version = "edge-26.1.1"
	}
	if p == meshv1alpha1.ProviderCilium {
		mi.Spec.Version = "1.19.5"
	}
	testenv.Must(t, c.Create(ctx, mi))
	apimeta.SetStatusCondition(&mi.Status.Conditions, metav1.Condition{Type: meshv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "installed"})
	testenv.Must(t, c.Status().Update(ctx, mi))
	t.Cleanup(func() { _ = c.Delete(ctx, mi) })
}

// app creates namespace name with labels and one Deployment, rolled out.
func app(t *testing.T, c client.Client, name string, labels map[string]string) {
	t.Helper()
	testenv.Must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}))
	one := int32(1)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: name},
		Spec: appsv1.DeploymentSpec{Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}}}}}
	testenv.Must(t, c.Create(ctx, d))
	testenv.MarkAvailable(t, c, name)
}

func get(c client.Client, name string) (*meshv1alpha1.MeshAdoption, error) {
	ma := &meshv1alpha1.MeshAdoption{}
	return ma, c.Get(ctx, client.ObjectKey{Name: name}, ma)
}

func waitAdoption(t *testing.T, c client.Client, name, what string, timeout time.Duration, ok func(*meshv1alpha1.MeshAdoption) error) *meshv1alpha1.MeshAdoption {
	t.Helper()
	var ma *meshv1alpha1.MeshAdoption
	testenv.Eventually(t, timeout, name+" "+what, func() error {
		var err error
		if ma, err = get(c, name); err != nil {
			return err
		}
		if err := ok(ma); err != nil {
			return fmt.Errorf("%w; status: phase %s, %s", err, ma.Status.Phase, testenv.Conditions(&ma.Status.CommonStatus))
		}
		return nil
	})
	return ma
}

func condIs(ma *meshv1alpha1.MeshAdoption, typ string, s metav1.ConditionStatus, reason string) error {
	c := apimeta.FindStatusCondition(ma.Status.Conditions, typ)
	if c == nil || c.Status != s || (reason != "" && c.Reason != reason) {
		return fmt.Errorf("want %s=%s (%s)", typ, s, reason)
	}
	if ma.Status.ObservedGeneration != ma.Generation {
		return fmt.Errorf("observedGeneration %d, generation %d", ma.Status.ObservedGeneration, ma.Generation)
	}
	return nil
}

func nsOf(t *testing.T, c client.Client, name string) *corev1.Namespace {
	t.Helper()
	var ns corev1.Namespace
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: name}, &ns))
	return &ns
}

func deployment(t *testing.T, c client.Client, ns string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &d))
	return &d
}

func deploymentOrNil(c client.Client, ns string) *appsv1.Deployment {
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &d); err != nil {
		return nil
	}
	return &d
}

// markAvailable is testenv.MarkAvailable for one Deployment, without a
// testing.T (it runs in a goroutine).
func markAvailable(c client.Client, d *appsv1.Deployment) {
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
		}}
	_ = c.Status().Update(ctx, d)
}
