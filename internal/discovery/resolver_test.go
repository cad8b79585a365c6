package discovery

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

// TestResolverAgainstAPIServer resolves providers from objects stored in a
// real API server.
func TestResolverAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1"}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	r := &Resolver{Reader: c, Registry: providers.Registry()}

	got, err := r.Resolve(ctx, "shop", "")
	if err != nil || got.Provider != meshv1alpha1.ProviderIstio || got.MeshInstall != "istio" {
		t.Fatalf("shop: %+v, %v", got, err)
	}
	var noMesh *NoMeshError
	if _, err := r.Resolve(ctx, "plain", ""); !errors.As(err, &noMesh) {
		t.Fatalf("plain: want NoMeshError, got %v", err)
	}
	got, err = r.Resolve(ctx, "plain", meshv1alpha1.ProviderLinkerd)
	if err != nil || got.Provider != meshv1alpha1.ProviderLinkerd || got.MeshInstall != "" || got.Source != "spec.provider" {
		t.Fatalf("plain with explicit Linkerd: %+v, %v", got, err)
	}
	if _, err := r.Resolve(ctx, "missing", ""); !apierrors.IsNotFound(errors.Unwrap(err)) {
		t.Fatalf("missing namespace: want a wrapped NotFound, got %v", err)
	}
}
