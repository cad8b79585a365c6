package meshfederation

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/ownership"
)

// kind is the owner kind in ownership labels.
const kind = "MeshFederation"

// applyTo server-side applies objs to the cluster of c through
// internal/apply (field manager meshplane, ownership labels, a hash to see
// removed keys, nothing sent when the live objects already hold the
// desired fields). The owner is detached: the objects may live in another
// cluster and outlive the federation. An object of the same name the
// federation did not create is never written: *apply.ConflictError, before
// any write.
func (r *Reconciler) applyTo(ctx context.Context, c client.Client, fed *meshv1alpha1.MeshFederation, objs ...client.Object) (apply.ChangeSet, error) {
	a := &apply.Applier{Client: c, Scheme: r.Local.Scheme()}
	res, err := a.Apply(ctx, apply.Detached(fed, kind), objs, nil)
	return res.Changes, err
}

// secret is a desired Secret.
func secret(ns, name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: typ, Data: data}
}

// configMap is a desired ConfigMap.
func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// owned reports whether obj exists (a nil pointer does not) and was
// created by the federation.
func owned(obj client.Object, fed string) bool {
	return obj != nil && !reflect.ValueOf(obj).IsNil() && ownership.IsOwnedBy(obj, kind, "", fed)
}

// getSecret returns the Secret or nil when it does not exist.
func getSecret(ctx context.Context, c client.Reader, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// getConfigMap returns the ConfigMap or nil when it does not exist.
func getConfigMap(ctx context.Context, c client.Reader, ns, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return cm, nil
}

// written returns the change of the object of kind k in cs that sent a
// write, if any.
func written(cs apply.ChangeSet, k string) bool {
	for _, c := range cs.Written() {
		if c.Object.Kind == k {
			return true
		}
	}
	return false
}

// describe renders "Secret ns/name".
func describe(k, ns, name string) string { return fmt.Sprintf("%s %s/%s", k, ns, name) }
