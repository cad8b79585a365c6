package apply

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// ToUnstructured converts a typed object to unstructured through its JSON
// encoding (Istio's protobuf-backed types only encode correctly that way),
// setting apiVersion and kind from the scheme when TypeMeta is empty.
// Status and creationTimestamp are dropped: desired objects have neither.
func ToUnstructured(obj client.Object, scheme *runtime.Scheme) (*unstructured.Unstructured, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.DeepCopy(), nil
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		if scheme == nil {
			return nil, fmt.Errorf("object %s has no apiVersion/kind", obj.GetName())
		}
		var err error
		if gvk, err = apiutil.GVKForObject(obj, scheme); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	delete(u.Object, "status")
	if spec, ok := u.Object["spec"].(map[string]any); ok && len(spec) == 0 && gvk.Group == "" && gvk.Kind == "Namespace" {
		delete(u.Object, "spec")
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
