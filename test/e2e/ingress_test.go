package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestIngressGateway runs IngressGateways on the simulated cluster with
// every controller. The cluster runs no gateway implementation: the test
// plays the class's controller (it accepts the classes, programs the
// Gateways and, for Linkerd, runs the implementation's Deployment whose
// pods the cluster's real ReplicaSet controller creates). It checks:
//   - Istio: a Gateway of class istio, Ready once programmed, mTLS Yes;
//   - Linkerd: a Gateway of the user's class asking for injection; the
//     mTLS answer read from the real pods: Yes while they run
//     linkerd-proxy, No naming the pods once a rollout drops the proxy;
//   - deletion: the cluster's garbage collector removes the Gateways.
//
// Only a real data plane can show that traffic through the gateway reaches
// a backend, and over mTLS; docs/ingress.md says how to check that.
func TestIngressGateway(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	c := harness.StartManager(t, sim.Config).Client
	start := time.Now()
	testenv.GatewayClass(t, c, "istio", true)
	testenv.GatewayClass(t, c, "envoy-gateway", true)
	for ns, labels := range map[string]map[string]string{"shop": {"istio-injection": "enabled"}, "edge": nil} {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
		if ns == "edge" {
			n.Annotations = map[string]string{"linkerd.io/inject": "enabled"}
		}
		if err := c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	listeners := []meshv1alpha1.IngressListener{{Name: "http", Port: 80, Protocol: meshv1alpha1.IngressHTTP, Hostname: "shop.example.com"}}
	istio := &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "shop"},
		Spec: meshv1alpha1.IngressGatewaySpec{Listeners: listeners}}
	linkerd := &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "edge"},
		Spec: meshv1alpha1.IngressGatewaySpec{GatewayClassName: "envoy-gateway", Listeners: listeners}}
	for _, g := range []*meshv1alpha1.IngressGateway{istio, linkerd} {
		if err := c.Create(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	waitIngress(t, c, istio, "Istio Gateway applied", func(g *meshv1alpha1.IngressGateway) bool {
		return reasonOf(g) == meshv1alpha1.GatewayNotProgrammedReason && g.Status.GatewayClassName == "istio"
	})
	testenv.ProgramGateway(t, c, "shop", "shop", true, true, "127.96.30.1")
	waitIngress(t, c, istio, "Istio Ready, mTLS Yes", func(g *meshv1alpha1.IngressGateway) bool {
		return status.IsTrue(&g.Status.CommonStatus, meshv1alpha1.ReadyCondition) && g.Status.BackendMTLS == meshv1alpha1.BackendMTLSYes
	})

	// The implementation of class envoy-gateway runs the gateway in its own
	// namespace, with the labels and annotation the Gateway's
	// spec.infrastructure carries, and Linkerd's injector added the proxy.
	waitIngress(t, c, linkerd, "Linkerd Gateway applied", func(g *meshv1alpha1.IngressGateway) bool {
		return reasonOf(g) == meshv1alpha1.GatewayNotProgrammedReason
	})
	gw := &gatewayv1.Gateway{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(linkerd), gw); err != nil {
		t.Fatal(err)
	}
	if gw.Spec.Infrastructure.Annotations["linkerd.io/inject"] != "enabled" {
		t.Fatalf("infrastructure %+v", gw.Spec.Infrastructure)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "envoy-gateway-system"}}); err != nil {
		t.Fatal(err)
	}
	deploy := gatewayDeployment(gw, "envoy", "linkerd-proxy")
	if err := c.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "gateway pods running", func() error { return rolledOut(c, nil, deploy) })
	testenv.ProgramGateway(t, c, "edge", "edge", true, true, "127.96.30.2")
	waitIngress(t, c, linkerd, "Linkerd Ready, mTLS Yes from the pods", func(g *meshv1alpha1.IngressGateway) bool {
		return status.IsTrue(&g.Status.CommonStatus, meshv1alpha1.ReadyCondition) && g.Status.BackendMTLS == meshv1alpha1.BackendMTLSYes
	})

	// A rollout without the proxy (the injector was down): the pods say No.
	if err := c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy); err != nil {
		t.Fatal(err)
	}
	deploy.Spec.Template.Spec.Containers = deploy.Spec.Template.Spec.Containers[:1]
	if err := c.Update(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "rollout without the proxy", func() error { return rolledOut(c, []string{"linkerd-proxy"}, deploy) })
	// The implementation reports on the Gateway again (a new address).
	testenv.ProgramGateway(t, c, "edge", "edge", true, true, "127.96.30.3")
	waitIngress(t, c, linkerd, "Linkerd mTLS No naming the pods", func(g *meshv1alpha1.IngressGateway) bool {
		m := status.Get(&g.Status.CommonStatus, meshv1alpha1.BackendMTLSCondition)
		return g.Status.BackendMTLS == meshv1alpha1.BackendMTLSNo && m != nil && strings.Contains(m.Message, "run without linkerd-proxy (envoy-gateway-system/")
	})

	for _, g := range []*meshv1alpha1.IngressGateway{istio, linkerd} {
		if err := c.Delete(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	until(t, 30*time.Second, "Gateways garbage-collected", func() error {
		for _, key := range []client.ObjectKey{{Namespace: "shop", Name: "shop"}, {Namespace: "edge", Name: "edge"}} {
			if err := c.Get(ctx, key, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("Gateway %s: %v", key, err)
			}
		}
		return nil
	})
	if d := time.Since(start); d > 90*time.Second {
		t.Fatalf("took %s", d)
	}
}

// gatewayDeployment is what a Gateway API implementation would run for gw:
// pods labelled with gw's infrastructure labels, with the containers named.
func gatewayDeployment(gw *gatewayv1.Gateway, containers ...string) *appsv1.Deployment {
	labels := map[string]string{}
	for k, v := range gw.Spec.Infrastructure.Labels {
		labels[string(k)] = string(v)
	}
	var cs []corev1.Container
	for _, n := range containers {
		cs = append(cs, corev1.Container{Name: n, Image: "example.invalid/" + n + ":1"})
	}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "envoy-" + gw.Name, Namespace: "envoy-gateway-system"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{mesh.IngressGatewayLabel: gw.Name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: cs}}}}
}

// rolledOut reports whether d rolled out: every pod of its selector
// runs, is not terminating, and has none of the containers in without.
func rolledOut(c client.Client, without []string, d *appsv1.Deployment) error {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		return err
	}
	n := 0
	for _, p := range pods.Items {
		for _, ctr := range p.Spec.Containers {
			for _, w := range without {
				if ctr.Name == w {
					return fmt.Errorf("pod %s still has %s", p.Name, w)
				}
			}
		}
		if p.DeletionTimestamp.IsZero() && podReady(&p) {
			n++
		}
	}
	if n != int(*d.Spec.Replicas) {
		return fmt.Errorf("%d of %d pods ready", n, *d.Spec.Replicas)
	}
	return nil
}

func reasonOf(g *meshv1alpha1.IngressGateway) string {
	if r := status.Get(&g.Status.CommonStatus, meshv1alpha1.ReadyCondition); r != nil && g.Status.ObservedGeneration == g.Generation {
		return r.Reason
	}
	return ""
}

func waitIngress(t *testing.T, c client.Client, g *meshv1alpha1.IngressGateway, what string, ok func(*meshv1alpha1.IngressGateway) bool) {
	t.Helper()
	until(t, 30*time.Second, what, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(g), g); err != nil {
			return err
		}
		if !ok(g) {
			return fmt.Errorf("%+v; %s", g.Status, testenv.Conditions(&g.Status.CommonStatus))
		}
		return nil
	})
}
