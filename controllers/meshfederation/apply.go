package meshfederation

import (
	"bytes"
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
)

// kind is the owner kind in ownership labels.
const kind = "MeshFederation"

// ConflictError says that an object with an output's name exists and was
// not created by this federation; it is never taken over.
type ConflictError struct {
	Cluster, Kind, Namespace, Name, Owner string
}

// Error names the object and who owns it.
func (e *ConflictError) Error() string {
	owner := "was not created by Meshplane"
	if e.Owner != "" {
		owner = "belongs to " + e.Owner
	}
	return fmt.Sprintf("cluster %s: %s %s/%s exists and %s; Meshplane does not take it over (delete or rename it, or point the member at another namespace)",
		e.Cluster, e.Kind, e.Namespace, e.Name, owner)
}

// Reason is the condition reason.
func (e *ConflictError) Reason() string { return meshv1alpha1.ConflictReason }

// checkOwned returns a *ConflictError when obj exists and is not this
// federation's.
func checkOwned(cluster string, obj client.Object, objKind, fed string) error {
	if obj == nil || reflect.ValueOf(obj).IsNil() || ownership.IsOwnedBy(obj, kind, "", fed) {
		return nil
	}
	owner := ""
	if ownership.IsManaged(obj) {
		owner = "Meshplane object " + obj.GetLabels()[ownership.OwnerLabel]
	}
	return &ConflictError{Cluster: cluster, Kind: objKind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Owner: owner}
}

func hasLabels(obj client.Object, labels map[string]string) bool {
	for k, v := range labels {
		if obj.GetLabels()[k] != v {
			return false
		}
	}
	return true
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

// secretUpToDate reports whether existing already holds labels, typ and
// every key of data, and none of the keys in absent.
func secretUpToDate(existing *corev1.Secret, labels map[string]string, typ corev1.SecretType, data map[string][]byte, absent []string) bool {
	if existing == nil || !hasLabels(existing, labels) || existing.Type != typ {
		return false
	}
	for k, v := range data {
		if !bytes.Equal(existing.Data[k], v) {
			return false
		}
	}
	for _, k := range absent {
		if _, ok := existing.Data[k]; ok {
			return false
		}
	}
	return true
}

// applySecret server-side applies a Secret of exactly these labels and data
// (field manager meshplane) unless existing already holds them. It returns
// whether it wrote.
func applySecret(ctx context.Context, c client.Client, existing *corev1.Secret, ns, name string, labels map[string]string,
	typ corev1.SecretType, data map[string][]byte, absent []string) (bool, error) {
	if secretUpToDate(existing, labels, typ, data, absent) {
		return false, nil
	}
	ac := corev1ac.Secret(name, ns).WithLabels(labels).WithType(typ).WithData(data)
	if err := c.Apply(ctx, ac, client.FieldOwner(ownership.FieldManager), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("applying Secret %s/%s: %w", ns, name, err)
	}
	return true, nil
}

// applyConfigMap is applySecret for a ConfigMap.
func applyConfigMap(ctx context.Context, c client.Client, existing *corev1.ConfigMap, ns, name string, labels map[string]string,
	data map[string]string) (bool, error) {
	if existing != nil && hasLabels(existing, labels) {
		same := true
		for k, v := range data {
			if existing.Data[k] != v {
				same = false
			}
		}
		if same {
			return false, nil
		}
	}
	ac := corev1ac.ConfigMap(name, ns).WithLabels(labels).WithData(data)
	if err := c.Apply(ctx, ac, client.FieldOwner(ownership.FieldManager), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("applying ConfigMap %s/%s: %w", ns, name, err)
	}
	return true, nil
}
