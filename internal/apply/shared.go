package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
)

// RestoreFieldManager is the field manager that writes back the previous
// value of a foreign field when Meshplane releases it: the value then no
// longer belongs to field manager meshplane, and stays.
const RestoreFieldManager = "meshplane-restore"

// annotationField and labelField render a shared field's path.
func annotationField(key string) string { return "metadata.annotations[" + key + "]" }
func labelField(key string) string      { return "metadata.labels[" + key + "]" }

// sharedFields records the fields a shared output u sets, each with the
// value it held before Meshplane set it: the recorded one when the owner
// already has a record; none (release removes it) when the object was in
// the inventory without a record (Meshplane's own value is live); else
// the live value.
func sharedFields(u *unstructured.Unstructured, live map[string]any, recorded []meshv1alpha1.SharedField, inInventory bool) []meshv1alpha1.SharedField {
	ref := refOf(u)
	lu := &unstructured.Unstructured{Object: live}
	var out []meshv1alpha1.SharedField
	add := func(field string, current map[string]string, key string) {
		for _, r := range recorded {
			if r.Object == ref && r.Field == field {
				out = append(out, r)
				return
			}
		}
		f := meshv1alpha1.SharedField{Object: ref, Field: field}
		if v, ok := current[key]; ok && !inInventory {
			f.Previous = ptr.To(v)
		}
		out = append(out, f)
	}
	for _, k := range sortedKeys(u.GetAnnotations()) {
		add(annotationField(k), lu.GetAnnotations(), k)
	}
	for _, k := range sortedKeys(u.GetLabels()) {
		add(labelField(k), lu.GetLabels(), k)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// recordsOf returns the records of ref.
func recordsOf(recorded []meshv1alpha1.SharedField, ref meshv1alpha1.ObjectReference) []meshv1alpha1.SharedField {
	var out []meshv1alpha1.SharedField
	for _, r := range recorded {
		if r.Object == ref {
			out = append(out, r)
		}
	}
	return out
}

// release gives up the fields Meshplane applied to the shared object ref.
// Fields recorded with a previous value get it back first, applied by
// RestoreFieldManager (so the value never goes missing in between); then
// an empty configuration applied by field manager meshplane releases the
// rest, which removes the fields that were absent before.
func (a *Applier) release(ctx context.Context, ref meshv1alpha1.ObjectReference, recorded []meshv1alpha1.SharedField, dry bool) error {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return err
	}
	gvk := gv.WithKind(ref.Kind)
	restore := &unstructured.Unstructured{}
	restore.SetGroupVersionKind(gvk)
	restore.SetName(ref.Name)
	restore.SetNamespace(ref.Namespace)
	ann, labels := map[string]string{}, map[string]string{}
	for _, r := range recordsOf(recorded, ref) {
		if r.Previous == nil {
			continue
		}
		if k, ok := strings.CutPrefix(r.Field, "metadata.annotations["); ok {
			ann[strings.TrimSuffix(k, "]")] = *r.Previous
		} else if k, ok := strings.CutPrefix(r.Field, "metadata.labels["); ok {
			labels[strings.TrimSuffix(k, "]")] = *r.Previous
		}
	}
	opts := func(manager string) []client.ApplyOption {
		o := []client.ApplyOption{client.FieldOwner(manager), client.ForceOwnership}
		if dry {
			o = append(o, client.DryRunAll)
		}
		return o
	}
	if len(ann)+len(labels) > 0 {
		if len(ann) > 0 {
			restore.SetAnnotations(ann)
		}
		if len(labels) > 0 {
			restore.SetLabels(labels)
		}
		if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(restore), opts(RestoreFieldManager)...); err != nil {
			return fmt.Errorf("restoring the previous values: %w", err)
		}
	}
	empty := &unstructured.Unstructured{}
	empty.SetGroupVersionKind(gvk)
	empty.SetName(ref.Name)
	empty.SetNamespace(ref.Namespace)
	return a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(empty), opts(ownership.FieldManager)...)
}
