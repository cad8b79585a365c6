// Package ownership names what Meshplane owns: the labels every output
// carries and the field manager of every server-side apply. An object
// without these labels was not created by Meshplane and is never modified
// or deleted (a name clash is a Conflict, not a takeover).
package ownership

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// FieldManager is the field manager of every server-side apply.
	FieldManager = "meshplane"
	// ManagedByLabel marks objects Meshplane created.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value.
	ManagedByValue = "meshplane"
	// OwnerLabel names the Meshplane object an output belongs to, as
	// OwnerValue renders it.
	OwnerLabel = "meshplane.io/owner"
)

// OwnerValue renders the owner label value "<kind>.<namespace>.<name>"
// (kind lower-cased, namespace empty for cluster-scoped owners). Values
// longer than a label allows are shortened with a hash suffix, so they stay
// unique.
func OwnerValue(kind, namespace, name string) string {
	v := strings.ToLower(kind) + "." + namespace + "." + name
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	h := hex.EncodeToString(sum[:])[:10]
	prefix := strings.TrimRight(v[:min(len(v), validation.LabelValueMaxLength-11)], "._-")
	return prefix + "-" + h
}

// Labels returns the labels every output of the owner carries.
func Labels(kind, namespace, name string) map[string]string {
	return map[string]string{ManagedByLabel: ManagedByValue, OwnerLabel: OwnerValue(kind, namespace, name)}
}

// IsManaged reports whether obj was created by Meshplane.
func IsManaged(obj client.Object) bool {
	return obj.GetLabels()[ManagedByLabel] == ManagedByValue && obj.GetLabels()[OwnerLabel] != ""
}

// IsOwnedBy reports whether obj was created by Meshplane for the owner.
func IsOwnedBy(obj client.Object, kind, namespace, name string) bool {
	return IsManaged(obj) && obj.GetLabels()[OwnerLabel] == OwnerValue(kind, namespace, name)
}
