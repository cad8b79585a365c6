package e2e

import (
	"fmt"
	"testing"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
)

// TestEgressPolicy runs an EgressPolicy's life on the simulated cluster
// with every controller: Ready on Istio with its ServiceEntries and a
// REGISTRY_ONLY Sidecar; a BreakGlass lifts the allow-list (ALLOW_ANY) and
// its deletion restores REGISTRY_ONLY; deleting the policy leaves its
// outputs to the cluster's real garbage collector (owner references), which
// removes them. Bounded well under a minute.
func TestEgressPolicy(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	c := harness.StartManager(t, sim.Config).Client
	start := time.Now()
	const ns = "payments"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}); err != nil {
		t.Fatal(err)
	}
	eg := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "out", Namespace: ns},
		Spec: meshv1alpha1.EgressPolicySpec{Rules: []meshv1alpha1.EgressRule{
			{Name: "stripe", Hosts: []string{"api.stripe.com"}, Ports: []meshv1alpha1.EgressPort{{Number: 443, Protocol: meshv1alpha1.EgressTLS}}},
			{Name: "db", CIDRs: []string{"203.0.113.0/24"}, Ports: []meshv1alpha1.EgressPort{{Number: 5432, Protocol: meshv1alpha1.EgressTCP}}},
		}}}
	if err := c.Create(ctx, eg); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(eg)
	until(t, 30*time.Second, "EgressPolicy Ready", func() error {
		if err := c.Get(ctx, key, eg); err != nil {
			return err
		}
		if !status.IsTrue(&eg.Status.CommonStatus, meshv1alpha1.ReadyCondition) || eg.Status.ObservedGeneration != eg.Generation {
			return fmt.Errorf("%+v", eg.Status.Conditions)
		}
		return nil
	})
	if len(eg.Status.Inventory) != 3 {
		t.Fatalf("inventory %v", eg.Status.Inventory)
	}
	mode := func() networkingv1alpha3.OutboundTrafficPolicy_Mode {
		sc := &istionetworking.Sidecar{}
		if err := c.Get(ctx, key, sc); err != nil {
			t.Fatal(err)
		}
		return sc.Spec.OutboundTrafficPolicy.GetMode()
	}
	if m := mode(); m != networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY {
		t.Fatalf("Sidecar mode %v", m)
	}

	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "egress-incident"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "INC-1: a partner API moved", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio},
			Scope: &meshv1alpha1.BreakGlassScope{Namespaces: []string{ns}}}}
	if err := c.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "allow-list lifted", func() error {
		if m := mode(); m != networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY {
			return fmt.Errorf("mode %v", m)
		}
		return nil
	})
	if err := c.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "allow-list restored", func() error {
		if m := mode(); m != networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY {
			return fmt.Errorf("mode %v", m)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(bg), &meshv1alpha1.BreakGlass{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("BreakGlass still there: %v", err)
		}
		return nil
	})

	if err := c.Delete(ctx, eg); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "outputs garbage-collected", func() error {
		se := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "out-stripe"}, &istionetworking.ServiceEntry{})
		sc := c.Get(ctx, key, &istionetworking.Sidecar{})
		if !apierrors.IsNotFound(se) || !apierrors.IsNotFound(sc) {
			return fmt.Errorf("ServiceEntry: %v; Sidecar: %v", se, sc)
		}
		return nil
	})
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("took %s", d)
	}
}

// until polls check every 200ms until it returns nil or timeout passes.
func until(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
