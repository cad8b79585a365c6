package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// RestoreFieldManager is the field manager that writes back the previous
// value of a foreign field when Meshplane releases it: the value then no
// longer belongs to field manager meshplane, and stays.
const RestoreFieldManager = "meshplane-restore"

// sharedMaps are the string maps of a shared object whose entries an
// owner may set, with the path its fields are recorded under: the
// object's annotations and labels, and a workload's pod-template
// annotations.
var sharedMaps = [][]string{
	{"metadata", "annotations"},
	{"metadata", "labels"},
	{"spec", "template", "metadata", "annotations"},
}

// fieldOf renders the path of entry key of the map at path, e.g.
// metadata.annotations[key].
func fieldOf(path []string, key string) string { return strings.Join(path, ".") + "[" + key + "]" }

// parseField splits a recorded field into its map's path and key; ok is
// false for a field of no shared map.
func parseField(field string) (path []string, key string, ok bool) {
	for _, p := range sharedMaps {
		if k, found := strings.CutPrefix(field, strings.Join(p, ".")+"["); found && strings.HasSuffix(k, "]") {
			return p, strings.TrimSuffix(k, "]"), true
		}
	}
	return nil, "", false
}

// objName is namespace/name, or name for a cluster-scoped object.
func objName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// sharedFields records the fields a shared output u sets, each with the
// value it held before Meshplane set it: the recorded one when the owner
// already has a record; none (release removes it) when the object was in
// the inventory without a record (Meshplane's own value is live); else
// the live value.
func sharedFields(u *unstructured.Unstructured, live map[string]any, recorded []meshv1alpha1.SharedField, inInventory bool) []meshv1alpha1.SharedField {
	ref := refOf(u)
	var out []meshv1alpha1.SharedField
	for _, path := range sharedMaps {
		want, _, _ := unstructured.NestedStringMap(u.Object, path...)
		current, _, _ := unstructured.NestedStringMap(live, path...)
		for _, k := range sortedKeys(want) {
			out = append(out, sharedField(ref, fieldOf(path, k), current, k, recorded, inInventory))
		}
	}
	return out
}

// sharedField is the record of one field (see sharedFields).
func sharedField(ref meshv1alpha1.ObjectReference, field string, current map[string]string, key string, recorded []meshv1alpha1.SharedField, inInventory bool) meshv1alpha1.SharedField {
	for _, r := range recorded {
		if r.Object == ref && r.Field == field {
			return r
		}
	}
	f := meshv1alpha1.SharedField{Object: ref, Field: field}
	if v, ok := current[key]; ok && !inInventory {
		f.Previous = ptr.To(v)
	}
	return f
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// keepPrevious puts back in the shared output u the fields the owner
// set before and no longer sets that held a value before it (a field a
// BreakGlass relaxes): u then applies that previous value, and the record
// stays, so the value is exact now and when the field is set again or
// released. Recorded fields that were absent before are left out of u:
// the apply removes them.
func keepPrevious(u *unstructured.Unstructured, recorded []meshv1alpha1.SharedField) {
	ann, labels := u.GetAnnotations(), u.GetLabels()
	for _, r := range recorded {
		if r.Previous == nil {
			continue
		}
		if k, ok := strings.CutPrefix(r.Field, "metadata.annotations["); ok {
			k = strings.TrimSuffix(k, "]")
			if _, set := ann[k]; !set {
				if ann == nil {
					ann = map[string]string{}
				}
				ann[k] = *r.Previous
			}
		} else if k, ok := strings.CutPrefix(r.Field, "metadata.labels["); ok {
			k = strings.TrimSuffix(k, "]")
			if _, set := labels[k]; !set {
				if labels == nil {
					labels = map[string]string{}
				}
				labels[k] = *r.Previous
			}
		}
	}
	if len(ann) > 0 {
		u.SetAnnotations(ann)
	}
	if len(labels) > 0 {
		u.SetLabels(labels)
	}
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
	kept, err := a.restoredFields(ctx, gvk, ref)
	if err != nil {
		return err
	}
	restore.Object = mergeMaps(restore.Object, kept)
	restores := len(kept)
	for _, r := range recordsOf(recorded, ref) {
		path, key, ok := parseField(r.Field)
		if r.Previous == nil || !ok {
			continue
		}
		if err := unstructured.SetNestedField(restore.Object, *r.Previous, append(slices.Clone(path), key)...); err != nil {
			return err
		}
		restores++
	}
	opts := func(manager string) []client.ApplyOption {
		o := []client.ApplyOption{client.FieldOwner(manager), client.ForceOwnership}
		if dry {
			o = append(o, client.DryRunAll)
		}
		return o
	}
	if restores > 0 {
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

// restoredFields are the entries of the shared maps of the object ref that
// field manager RestoreFieldManager already holds (restored earlier, maybe
// for another owner), with their live values: a restore applies them
// again, or its apply would release them. One uncached read, on release
// only; nothing when there is no APIReader.
func (a *Applier) restoredFields(ctx context.Context, gvk schema.GroupVersionKind, ref meshv1alpha1.ObjectReference) (map[string]any, error) {
	if a.APIReader == nil {
		return nil, nil
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(gvk)
	if err := a.APIReader.Get(ctx, clientKey(ref), live); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	out := map[string]any{}
	for _, e := range live.GetManagedFields() {
		if e.Manager != RestoreFieldManager || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if json.Unmarshal(e.FieldsV1.GetRawBytes(), &set) != nil {
			continue
		}
		for _, path := range sharedMaps {
			values, _, _ := unstructured.NestedStringMap(live.Object, path...)
			for k := range ownedKeys(set, path) {
				if v, ok := values[k]; ok {
					_ = unstructured.SetNestedField(out, v, append(slices.Clone(path), k)...)
				}
			}
		}
	}
	return out, nil
}

// ownedKeys returns the keys of the map at path that the FieldsV1 set
// owns.
func ownedKeys(set map[string]any, path []string) map[string]bool {
	cur := set
	for _, p := range path {
		next, ok := cur["f:"+p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	keys := map[string]bool{}
	for k := range cur {
		if name, ok := strings.CutPrefix(k, "f:"); ok {
			keys[name] = true
		}
	}
	return keys
}

// foreignApplied refuses to write a field of a shared object of one of
// the owner's SharedKinds (a workload's pod-template annotation) that
// another field manager holds by server-side apply with a different value
// than u's: a declarative owner (a GitOps tool, a Helm 4 release) would
// apply it back, so taking it over would start a fight. Fields held by an
// imperative edit (operation Update: kubectl annotate or edit, client-side
// apply) are taken over, their previous value recorded and restored on
// release. One uncached read per shared object written; none on a no-op.
func (a *Applier) foreignApplied(ctx context.Context, owner Owner, u *unstructured.Unstructured, live map[string]any) error {
	if !slices.Contains(owner.SharedKinds, u.GroupVersionKind().GroupKind()) || a.APIReader == nil {
		return nil
	}
	var differing []string
	var paths [][]string
	for _, path := range sharedMaps {
		want, _, _ := unstructured.NestedStringMap(u.Object, path...)
		have, _, _ := unstructured.NestedStringMap(live, path...)
		for _, k := range sortedKeys(want) {
			if v, ok := have[k]; ok && v != want[k] {
				differing, paths = append(differing, k), append(paths, path)
			}
		}
	}
	if len(differing) == 0 {
		return nil
	}
	lu := &unstructured.Unstructured{}
	lu.SetGroupVersionKind(u.GroupVersionKind())
	if err := a.APIReader.Get(ctx, client.ObjectKeyFromObject(u), lu); err != nil {
		return err
	}
	for _, e := range lu.GetManagedFields() {
		if e.Operation != metav1.ManagedFieldsOperationApply || e.Manager == ownership.FieldManager || e.Manager == RestoreFieldManager || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if json.Unmarshal(e.FieldsV1.GetRawBytes(), &set) != nil {
			continue
		}
		for i, k := range differing {
			if ownedKeys(set, paths[i])[k] {
				have, _, _ := unstructured.NestedStringMap(lu.Object, paths[i]...)
				want, _, _ := unstructured.NestedStringMap(u.Object, paths[i]...)
				return outcome.Conflict("%s %s: %s is %q, applied by field manager %s, and this object sets %q; Meshplane never takes over a field another owner applies "+
					"(it would apply it back): remove %s from %s's configuration, set it to %q there, or leave %s out of spec.selector (nothing was applied)",
					u.GetKind(), objName(u.GetNamespace(), u.GetName()), fieldOf(paths[i], k), have[k], e.Manager, want[k],
					k, e.Manager, want[k], u.GetName())
			}
		}
	}
	return nil
}

// mergeMaps merges src into dst recursively and returns dst.
func mergeMaps(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			dm, _ := dst[k].(map[string]any)
			if dm == nil {
				dm = map[string]any{}
			}
			dst[k] = mergeMaps(dm, sm)
			continue
		}
		dst[k] = v
	}
	return dst
}
