package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// fedPair is two simulated clusters, each with its own Meshplane; the
// MeshFederation lives in west and reaches east through its kubeconfig.
type fedPair struct {
	west, east *cluster.Simulated
	clients    map[string]client.Client
}

var peerOf = map[string]string{"west": "east", "east": "west"}

func startFedPair(t *testing.T, opts cluster.SimulatedOptions) *fedPair {
	t.Helper()
	p := &fedPair{west: cluster.UseSimulated(t, opts), east: cluster.UseSimulated(t, opts)}
	p.clients = map[string]client.Client{
		"west": harness.StartManager(t, p.west.Config).Client,
		"east": harness.StartManager(t, p.east.Config).Client,
	}
	kc, err := os.ReadFile(p.east.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.clients["west"].Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "east-kubeconfig"},
		Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// federation is the MeshFederation "mesh" of west and east on provider.
func (p *fedPair) federation(provider meshv1alpha1.Provider) *meshv1alpha1.MeshFederation {
	f := &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "mesh"},
		Spec: meshv1alpha1.MeshFederationSpec{
			Root: &meshv1alpha1.RootCA{Generate: &meshv1alpha1.GeneratedRoot{}},
			Clusters: []meshv1alpha1.MemberCluster{
				{Name: "west", Provider: provider},
				{Name: "east", Provider: provider, KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "east-kubeconfig"}},
			},
			Services: &meshv1alpha1.ServiceFederationSpec{},
		}}
	if provider == meshv1alpha1.ProviderCilium {
		f.Spec.Clusters[0].ClusterID, f.Spec.Clusters[1].ClusterID = 1, 2
	}
	return f
}

// waitConnected waits for the federation's ServicesConnected=True at its
// generation.
func (p *fedPair) waitConnected(t *testing.T, timeout time.Duration) *meshv1alpha1.MeshFederation {
	t.Helper()
	f := &meshv1alpha1.MeshFederation{}
	harness.Eventually(t, timeout, "services connected", func() error {
		if err := p.clients["west"].Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ServicesConnectedCondition)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != f.Generation {
			var members []string
			for _, cs := range f.Status.Clusters {
				for _, mc := range cs.Conditions {
					if mc.Status != metav1.ConditionTrue {
						members = append(members, fmt.Sprintf("%s %s=%s(%s: %s)", cs.Name, mc.Type, mc.Status, mc.Reason, mc.Message))
					}
				}
			}
			return harness.Errorf("ServicesConnected %+v; members %v", c, members)
		}
		return nil
	})
	return f
}

// waitReady waits for the federation's Ready=True at its generation: the
// trust material is distributed to every member.
func (p *fedPair) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, "federation Ready", func() error {
		f := &meshv1alpha1.MeshFederation{}
		if err := p.clients["west"].Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ReadyCondition)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != f.Generation {
			return harness.Errorf("Ready %+v", c)
		}
		return nil
	})
}

// setIngress plays the load balancer: the Service gets ip as its address.
func setIngress(t *testing.T, c client.Client, ns, name, ip string) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, ns+"/"+name+" address", func() error {
		svc := &corev1.Service{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
			return err
		}
		if len(svc.Status.LoadBalancer.Ingress) == 1 && svc.Status.LoadBalancer.Ingress[0].IP == ip {
			return nil
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		return c.Status().Update(ctx, svc)
	})
}

// deployAvailable waits for a Deployment to have an available replica
// (kwok plays the kubelet).
func deployAvailable(t *testing.T, c client.Client, ns, name string, timeout time.Duration) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	harness.Eventually(t, timeout, ns+"/"+name+" available", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		if d.Status.AvailableReplicas < 1 || d.Status.ObservedGeneration != d.Generation {
			return harness.Errorf("%d available, observed %d of %d", d.Status.AvailableReplicas, d.Status.ObservedGeneration, d.Generation)
		}
		return nil
	})
	return d
}

// exportRatings creates shop/ratings (a Service without pods) in both
// clusters, in a namespace with the given labels and annotations (the
// mesh's enrolment), and exports east's with a ServiceExport. It returns
// the Services' labels and annotations before the export.
func (p *fedPair) exportRatings(t *testing.T, nsLabels, nsAnnotations map[string]string) map[string]string {
	t.Helper()
	before := map[string]string{}
	for _, name := range []string{"west", "east"} {
		c := p.clients[name]
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: nsLabels, Annotations: nsAnnotations}}); err != nil {
			t.Fatal(err)
		}
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: "shop",
			Labels: map[string]string{"app": "ratings"}, Annotations: map[string]string{"team": "shop"}},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "ratings"}, Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}}
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		before[name] = serviceMarks(t, c)
	}
	if err := p.clients["east"].Create(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings"}}); err != nil {
		t.Fatal(err)
	}
	// East is a remote member (not watched): a change in the operator
	// namespace wakes the federation.
	if err := p.clients["west"].Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "poke-export"}}); err != nil {
		t.Fatal(err)
	}
	return before
}

// serviceMarks renders shop/ratings' labels and annotations.
func serviceMarks(t *testing.T, c client.Client) string {
	t.Helper()
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "ratings"}, svc); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("labels %v annotations %v", svc.Labels, svc.Annotations)
}

// memberState renders what a BreakGlass in the other member must not
// touch in c: every webhook configuration and namespace (resource
// versions), every MeshInstall (resource version and generation) and the
// named objects.
func memberState(t *testing.T, c client.Client, objs ...client.Object) string {
	t.Helper()
	var out []string
	var mw admissionregistrationv1.MutatingWebhookConfigurationList
	var vw admissionregistrationv1.ValidatingWebhookConfigurationList
	var nss corev1.NamespaceList
	var mis meshv1alpha1.MeshInstallList
	for _, l := range []client.ObjectList{&mw, &vw, &nss, &mis} {
		if err := c.List(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range mw.Items {
		out = append(out, "MutatingWebhookConfiguration/"+w.Name+"@"+w.ResourceVersion)
	}
	for _, w := range vw.Items {
		out = append(out, "ValidatingWebhookConfiguration/"+w.Name+"@"+w.ResourceVersion)
	}
	for _, ns := range nss.Items {
		out = append(out, "Namespace/"+ns.Name+"@"+ns.ResourceVersion)
	}
	for _, mi := range mis.Items {
		out = append(out, fmt.Sprintf("MeshInstall/%s@%s gen %d", mi.Name, mi.ResourceVersion, mi.Generation))
	}
	for _, o := range objs {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%T/%s/%s@%s", o, o.GetNamespace(), o.GetName(), o.GetResourceVersion()))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// breakGlassLeavesPeer engages a BreakGlass on provider in east (by east's
// own Meshplane) and checks that west, and the federation's objects in
// east, stay exactly as they were, while the object it relaxes in east's
// namespace shop (the namespace itself, or a policy) did change.
func (p *fedPair) breakGlassLeavesPeer(t *testing.T, provider meshv1alpha1.Provider, relaxed client.Object, westObjs, eastObjs func() []client.Object) {
	t.Helper()
	start := time.Now()
	ec := p.clients["east"]
	westBefore, eastBefore := memberState(t, p.clients["west"], westObjs()...), objectVersions(t, ec, eastObjs())
	relaxedBefore := objectVersions(t, ec, []client.Object{relaxed})
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "east-incident"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "control plane in east unreachable", Target: meshv1alpha1.BreakGlassTarget{Provider: provider},
			Scope:   &meshv1alpha1.BreakGlassScope{Namespaces: []string{"shop"}},
			Actions: meshv1alpha1.BreakGlassActions{IncludeForeignPolicies: true}}}
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
	if after := memberState(t, p.clients["west"], westObjs()...); after != westBefore {
		t.Fatalf("a BreakGlass in east changed west:\nbefore %s\nafter  %s", westBefore, after)
	}
	if objectVersions(t, ec, []client.Object{relaxed}) == relaxedBefore {
		t.Fatalf("the BreakGlass left east's %s as it was", relaxedBefore)
	}
	if after := objectVersions(t, ec, eastObjs()); after != eastBefore {
		t.Fatalf("a BreakGlass in east changed the federation's objects in east:\nbefore %s\nafter  %s", eastBefore, after)
	}
	if err := ec.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "east BreakGlass released", func() error {
		err := ec.Get(ctx, client.ObjectKeyFromObject(bg), bg)
		if err == nil {
			return harness.Errorf("still there, phase %s", bg.Status.Phase)
		}
		return client.IgnoreNotFound(err)
	})
	t.Logf("BreakGlass in east engaged and released, west untouched, in %s", time.Since(start).Round(10*time.Millisecond))
}

func objectVersions(t *testing.T, c client.Client, objs []client.Object) string {
	t.Helper()
	var out []string
	for _, o := range objs {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%T/%s/%s@%s", o, o.GetNamespace(), o.GetName(), o.GetResourceVersion()))
	}
	return strings.Join(out, "\n")
}

// deleteFederation deletes the federation and waits until it is gone.
func (p *fedPair) deleteFederation(t *testing.T) {
	t.Helper()
	wc := p.clients["west"]
	f := &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "mesh"}}
	if err := wc.Delete(ctx, f); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 60*time.Second, "federation gone", func() error {
		err := wc.Get(ctx, client.ObjectKeyFromObject(f), f)
		if err == nil {
			return harness.Errorf("still there: %+v", f.Status.Conditions)
		}
		return client.IgnoreNotFound(err)
	})
}
