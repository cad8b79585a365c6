package canary

import (
	"context"
	"fmt"
	"testing"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// env is the package's envtest API server; every test uses its own
// namespaces.
var env testenv.Package

func TestMain(m *testing.M) { testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{}) }

func ptr[T any](v T) *T { return &v }

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// start runs a manager with only this controller, and the stand-in
// Deployment controller, and returns it with an uncached client.
func start(t *testing.T) (*testenv.Manager, client.Client) {
	t.Helper()
	m := testenv.StartManager(t, env.Cfg(t), testenv.ManagerOptions{}, Setup)
	rolloutDeployments(t, m.Client)
	return m, m.Client
}

func istioNamespace(t *testing.T, c client.Client) string {
	return testenv.Namespace(t, c, map[string]string{"istio-injection": "enabled"})
}

func linkerdNamespace(t *testing.T, c client.Client) string {
	return testenv.AnnotatedNamespace(t, c, nil, map[string]string{"linkerd.io/inject": "enabled"})
}

// rolloutDeployments stands in for kube-controller-manager, which envtest
// does not run: every Deployment reports its spec as rolled out and
// Available.
func rolloutDeployments(t *testing.T, c client.Client) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var list appsv1.DeploymentList
			if c.List(ctx, &list) != nil {
				continue
			}
			for i := range list.Items {
				d := &list.Items[i]
				want := int32(1)
				if d.Spec.Replicas != nil {
					want = *d.Spec.Replicas
				}
				st := d.Status
				if st.ObservedGeneration == d.Generation && st.Replicas == want && st.AvailableReplicas == want {
					continue
				}
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want,
					ReadyReplicas: want, AvailableReplicas: want}
				_ = c.Status().Update(ctx, d)
			}
		}
	}()
}

func deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "team": "shop"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func newCanary(ns, name string) *meshv1alpha1.Canary {
	return &meshv1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: meshv1alpha1.CanarySpec{
			TargetRef: meshv1alpha1.CanaryTargetReference{Name: name},
			Service:   meshv1alpha1.CanaryService{Port: 8080},
			Strategy:  meshv1alpha1.StrategyCanary,
			Analysis: meshv1alpha1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
				StepWeight: ptr[int32](50), MaxWeight: ptr[int32](100)},
		},
	}
}

func condition(cn *meshv1alpha1.Canary, typ string) string {
	c := status.Get(&cn.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func waitCanary(t *testing.T, c client.Client, key types.NamespacedName, what string, ok func(*meshv1alpha1.Canary) bool) *meshv1alpha1.Canary {
	t.Helper()
	cn := &meshv1alpha1.Canary{}
	testenv.Eventually(t, testenv.DefaultTimeout, what+" on "+key.String(), func() error {
		if err := c.Get(ctx, key, cn); err != nil {
			return err
		}
		if !ok(cn) {
			return fmt.Errorf("phase %s weight %d: %s", cn.Status.Phase, cn.Status.CanaryWeight, condition(cn, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	return cn
}

func phase(p meshv1alpha1.CanaryPhase) func(*meshv1alpha1.Canary) bool {
	return func(cn *meshv1alpha1.Canary) bool {
		return cn.Status.Phase == p && cn.Status.ObservedGeneration == cn.Generation
	}
}

func stalled(reason string) func(*meshv1alpha1.Canary) bool {
	return func(cn *meshv1alpha1.Canary) bool {
		c := status.Get(&cn.Status.CommonStatus, meshv1alpha1.StalledCondition)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason && cn.Status.ObservedGeneration == cn.Generation
	}
}

// initialized creates the Deployment web (replicas) and the Canary web in
// ns and waits until it is Initialized.
func initialized(t *testing.T, c client.Client, ns string, replicas int32, mod ...func(*meshv1alpha1.Canary)) (types.NamespacedName, *meshv1alpha1.Canary) {
	t.Helper()
	must(t, c.Create(ctx, deployment(ns, "web", "web:1", replicas)))
	cn := newCanary(ns, "web")
	for _, m := range mod {
		m(cn)
	}
	must(t, c.Create(ctx, cn))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	return key, waitCanary(t, c, key, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
}

// setImage changes a Deployment's image, retrying on conflicts with the
// stand-in Deployment controller.
func setImage(t *testing.T, c client.Client, key types.NamespacedName, image string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, "image "+image, func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		return c.Update(ctx, d)
	})
}

// setNamespaceAnnotation sets (or, with value "", removes) an annotation
// of a namespace.
func setNamespaceAnnotation(t *testing.T, c client.Client, ns, key, value string) {
	t.Helper()
	n := &corev1.Namespace{}
	must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	if value == "" {
		delete(n.Annotations, key)
	} else {
		n.Annotations[key] = value
	}
	must(t, c.Update(ctx, n))
}

// setBreakGlass points a namespace at a BreakGlass ("" lets go), as the
// BreakGlass controller does.
func setBreakGlass(t *testing.T, c client.Client, ns, breakGlass string) {
	t.Helper()
	setNamespaceAnnotation(t, c, ns, incident.NamespaceAnnotation, breakGlass)
}

// routeWeights returns the canary's highest weight in a route object, read
// with the registry's route readers.
func routeWeights(t *testing.T, c client.Client, ns, name, kind string) int64 {
	t.Helper()
	var obj client.Object = &istionetworking.VirtualService{}
	gvk := istionetworking.SchemeGroupVersion.WithKind("VirtualService")
	if kind == "HTTPRoute" {
		obj, gvk = &gatewayv1.HTTPRoute{}, schema.GroupVersionKind{Group: gatewayv1.GroupName, Version: "v1", Kind: "HTTPRoute"}
	}
	must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj))
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	must(t, err)
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	w, _, err := providers.Registry().CanaryShare(u, name+"-canary")
	must(t, err)
	return w
}
