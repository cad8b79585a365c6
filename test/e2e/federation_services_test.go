package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestServiceFederationTwoClusters federates two simulated clusters, each
// with Istio installed by its own Meshplane through a MeshInstall: the
// MeshFederation in west (east reached through its kubeconfig) shares a
// root, gives each cluster its east-west gateway (a Deployment that rolls
// out on kwok's nodes) and writes each cluster's remote secret into the
// other. A Service deployed in both clusters is then discoverable from
// each side through the other's remote secret, as istiod reads it: the
// credential reads the peer's EndpointSlices (filled by the real
// EndpointSlice controller) and nothing else.
func TestServiceFederationTwoClusters(t *testing.T) {
	parallel(t)
	start := time.Now()
	opts := cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.MCS}}}
	west, east := cluster.UseSimulated(t, opts), cluster.UseSimulated(t, opts)
	inj := fakeistiod.Start(t)
	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	wc := harness.StartManager(t, west.Config).Client
	ec := harness.StartManager(t, east.Config).Client
	clients := map[string]client.Client{"west": wc, "east": ec}

	for _, c := range clients {
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
				Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)}}}
		if err := c.Create(ctx, mi); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range clients {
		waitMI(t, c, "istio", 60*time.Second, name+" Istio Ready", ready)
	}
	t.Logf("both Istio installs Ready after %s", time.Since(start).Round(10*time.Millisecond))

	fedStart := time.Now()
	kc, err := os.ReadFile(east.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := wc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "east-kubeconfig"},
		Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
		t.Fatal(err)
	}
	fed := &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "mesh"},
		Spec: meshv1alpha1.MeshFederationSpec{
			Root: &meshv1alpha1.RootCA{Generate: &meshv1alpha1.GeneratedRoot{}},
			Clusters: []meshv1alpha1.MemberCluster{
				{Name: "west", Provider: meshv1alpha1.ProviderIstio},
				{Name: "east", Provider: meshv1alpha1.ProviderIstio, KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "east-kubeconfig"}},
			},
			Services: &meshv1alpha1.ServiceFederationSpec{MeshID: "mesh1"},
		}}
	if err := wc.Create(ctx, fed); err != nil {
		t.Fatal(err)
	}

	// Each cluster's east-west gateway rolls out (kwok plays the kubelet);
	// the test plays the load balancer.
	for name, c := range clients {
		harness.Eventually(t, 60*time.Second, name+" east-west gateway available", func() error {
			d := &appsv1.Deployment{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-eastwestgateway"}, d); err != nil {
				return err
			}
			if d.Status.AvailableReplicas < 1 {
				return harness.Errorf("%s: %d available", name, d.Status.AvailableReplicas)
			}
			svc := &corev1.Service{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-eastwestgateway"}, svc); err != nil {
				return err
			}
			if len(svc.Status.LoadBalancer.Ingress) == 0 {
				svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: map[string]string{"west": "127.96.2.1", "east": "127.96.2.2"}[name]}}
				return c.Status().Update(ctx, svc)
			}
			return nil
		})
	}
	harness.Eventually(t, 60*time.Second, "services connected", func() error {
		f := &meshv1alpha1.MeshFederation{}
		if err := wc.Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
		if c == nil || c.Status != metav1.ConditionTrue {
			return harness.Errorf("ServicesConnected %+v", c)
		}
		return nil
	})
	t.Logf("federation connected after %s", time.Since(start).Round(10*time.Millisecond))

	// The same Service in both clusters, with a pod each.
	for _, c := range clients {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "ratings"}, Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ratings"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "ratings"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/ratings:1",
						Ports: []corev1.ContainerPort{{ContainerPort: 9080}}}}}}}}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range clients {
		peer := map[string]string{"west": "east", "east": "west"}[name]
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-remote-secret-" + peer}, s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Labels["istio/multiCluster"] != "true" {
			t.Fatalf("%s: remote secret labels %v", name, s.Labels)
		}
		rc, err := remote.RESTConfig(name+"/remote-secret", s.Data[peer], 0)
		if err != nil {
			t.Fatal(err)
		}
		reader := testenv.NewClient(t, rc)
		harness.Eventually(t, 30*time.Second, name+" sees "+peer+"'s ratings endpoints", func() error {
			var slices discoveryv1.EndpointSliceList
			if err := reader.List(ctx, &slices, client.InNamespace("shop"), client.MatchingLabels{discoveryv1.LabelServiceName: "ratings"}); err != nil {
				return err
			}
			for _, es := range slices.Items {
				if len(es.Endpoints) > 0 {
					return nil
				}
			}
			return harness.Errorf("no endpoints of shop/ratings in %s yet", peer)
		})
		if err := reader.List(ctx, &corev1.SecretList{}, client.InNamespace("shop")); err == nil {
			t.Fatalf("%s's credential for %s may list Secrets", name, peer)
		}
	}
	serviceExportAcrossClusters(t, clients)
	ns := &corev1.Namespace{}
	if err := ec.Get(ctx, client.ObjectKey{Name: "istio-system"}, ns); err != nil || ns.Labels["topology.istio.io/network"] != "east" {
		t.Fatalf("east network label %v (%v)", ns.Labels, err)
	}

	// A BreakGlass in east (by east's own Meshplane) acts on east only: the
	// federation's objects in both clusters stay as they are.
	before := federationState(t, clients)
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "east-incident"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod in east unreachable", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
	if err := ec.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "east BreakGlass Engaged", func() error {
		if err := ec.Get(ctx, client.ObjectKeyFromObject(bg), bg); err != nil {
			return err
		}
		if bg.Status.Phase != meshv1alpha1.BreakGlassEngaged || bg.Status.Touched.Namespaces != 1 {
			return harness.Errorf("phase %s touched %+v", bg.Status.Phase, bg.Status.Touched)
		}
		return nil
	})
	if after := federationState(t, clients); after != before {
		t.Fatalf("a BreakGlass in east changed federation objects:\nbefore %s\nafter  %s", before, after)
	}
	if err := ec.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	// The federation's part is bounded; the clusters' start and the two
	// Istio installs depend on the machine's load and are only logged.
	if elapsed := time.Since(fedStart); elapsed > 60*time.Second {
		t.Fatalf("federation took %s, over the 60 s bound", elapsed)
	}
	t.Logf("two-cluster service federation end to end in %s", time.Since(start).Round(10*time.Millisecond))
}

// federationState renders what service federation and trust put into both
// clusters: resource versions of the remote secrets, cacerts and the mesh
// namespace, and the east-west gateway Deployment's generation (its status
// moves with kwok).
func federationState(t *testing.T, clients map[string]client.Client) string {
	t.Helper()
	var out []string
	for _, name := range []string{"west", "east"} {
		c := clients[name]
		peer := map[string]string{"west": "east", "east": "west"}[name]
		for _, sec := range []string{"istio-remote-secret-" + peer, "cacerts"} {
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: sec}, s); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s:Secret/%s@%s", name, sec, s.ResourceVersion))
		}
		ns := &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: "istio-system"}, ns); err != nil {
			t.Fatal(err)
		}
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "istio-eastwestgateway"}, d); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s:Namespace/istio-system@%s %s:Deployment/istio-eastwestgateway gen %d", name, ns.ResourceVersion, name, d.Generation))
	}
	return fmt.Sprint(out)
}
