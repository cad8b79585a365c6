package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// showEgressAndJWT applies, in the Istio sidecar namespace of the demo, an
// EgressPolicy (allow-list of two external hosts) and a ZeroTrustPolicy
// that requires a JWT of one issuer, waits until both are Ready and prints
// what Meshplane rendered for them.
func showEgressAndJWT(ctx context.Context, c client.Client) error {
	step("applying an EgressPolicy %[1]s/payments (allow-list: api.stripe.com TLS 443, *.docs.example.com HTTP 80) "+
		"and a ZeroTrustPolicy %[1]s/ratings requiring a JWT of https://auth.example.com", demoMeshNamespace)
	eg := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: demoMeshNamespace},
		Spec: meshv1alpha1.EgressPolicySpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "payments"}},
			Rules: []meshv1alpha1.EgressRule{
				{Name: "stripe", Hosts: []string{"api.stripe.com"}, Ports: []meshv1alpha1.EgressPort{{Number: 443, Protocol: meshv1alpha1.EgressTLS}}},
				{Name: "docs", Hosts: []string{"*.docs.example.com"}, Ports: []meshv1alpha1.EgressPort{{Number: 80, Protocol: meshv1alpha1.EgressHTTP}}},
			}}}
	zt := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: demoMeshNamespace},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ratings"}},
			JWT: &meshv1alpha1.JWTSettings{Issuers: []meshv1alpha1.JWTIssuer{{Issuer: "https://auth.example.com",
				JWKSURI: "https://auth.example.com/.well-known/jwks.json", Audiences: []string{"ratings"}}}},
			Rules: []meshv1alpha1.AllowRule{{Name: "signed-in",
				To:                []meshv1alpha1.TrafficDestination{{Ports: []int32{9080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}},
				RequestPrincipals: []string{"*"},
				Claims:            []meshv1alpha1.JWTClaim{{Name: "scope", Values: []string{"ratings.read"}}}}},
		}}
	for _, o := range []client.Object{eg, zt} {
		if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	for {
		_ = c.Get(ctx, client.ObjectKeyFromObject(eg), eg)
		_ = c.Get(ctx, client.ObjectKeyFromObject(zt), zt)
		if status.IsTrue(&eg.Status.CommonStatus, meshv1alpha1.ReadyCondition) && status.IsTrue(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("EgressPolicy and ZeroTrustPolicy not Ready: %v / %v",
				status.Get(&eg.Status.CommonStatus, meshv1alpha1.ReadyCondition), status.Get(&zt.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("\nEgressPolicy %s/payments is Ready on %s: %s\nZeroTrustPolicy %s/ratings (JWT) is Ready on %s (%s).\n",
		demoMeshNamespace, eg.Status.Provider, status.Get(&eg.Status.CommonStatus, meshv1alpha1.ReadyCondition).Message,
		demoMeshNamespace, zt.Status.Provider, zt.Status.Mode)
	fmt.Println("Rendered outputs:")
	return printOutputs(ctx, c, append(eg.Status.Inventory, zt.Status.Inventory...))
}

// printOutputs prints the objects refs names as YAML, without server-set
// metadata.
func printOutputs(ctx context.Context, c client.Client, refs []meshv1alpha1.ObjectReference) error {
	for _, ref := range refs {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(ref.APIVersion)
		u.SetKind(ref.Kind)
		if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u); err != nil {
			return err
		}
		u.SetManagedFields(nil)
		for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp"} {
			unstructured.RemoveNestedField(u.Object, "metadata", f)
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		fmt.Printf("---\n%s", b)
	}
	return nil
}
