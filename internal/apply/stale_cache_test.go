package apply_test

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

var env testenv.Package

func TestMain(m *testing.M) {
	testenv.RunEnvtest(m, &env, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
}

// staleCache is a cache that has not seen anything yet.
type staleCache struct{ client.Reader }

func (staleCache) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, key.Name)
}

// TestForeignObjectTheCacheHasNotSeen: an object someone created a moment
// ago, which the cache has not seen yet, is still never taken over: the
// apply re-reads through the API server before it creates, and refuses
// with a Conflict; the foreign object is unchanged.
func TestForeignObjectTheCacheHasNotSeen(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClient(t, env.Cfg(t))
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "stale-cache"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Suspend: true}}
	testenv.Must(t, c.Create(ctx, mi))
	t.Cleanup(func() { _ = c.Delete(ctx, mi) })
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: "default"}, Data: map[string]string{"owner": "someone"}}
	testenv.Must(t, c.Create(ctx, foreign))
	t.Cleanup(func() { _ = c.Delete(ctx, foreign) })

	want := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: "default"}, Data: map[string]string{"owner": "meshplane"}}
	a := &apply.Applier{Client: c, Reader: staleCache{c}, Scheme: scheme.New(), APIReader: c}
	_, err := a.Apply(ctx, apply.Owner{Object: mi, Kind: "MeshInstall", Detached: true}, []client.Object{want}, nil)
	var conflict *apply.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("apply over a foreign object the cache has not seen: %v, want a ConflictError", err)
	}
	after := &corev1.ConfigMap{}
	testenv.Must(t, c.Get(ctx, client.ObjectKeyFromObject(foreign), after))
	if after.ResourceVersion != foreign.ResourceVersion || after.Data["owner"] != "someone" {
		t.Fatalf("foreign ConfigMap changed: %+v", after)
	}
}
