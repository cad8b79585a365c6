package status

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Undecodable handles an object whose stored fields could not all be
// decoded (written before the CRD's rule for them existed; see
// api/v1alpha1/decode.go): it marks it Stalled with reason InvalidSpec, a
// message naming each field, its stored value and the fix, patches the
// status, logs it and returns true, so the caller reconciles nothing else
// for it. It returns false for an object decoded as stored.
func Undecodable(ctx context.Context, c client.Client, obj Object) (bool, error) {
	note := obj.GetCommonStatus().DecodeError()
	if note == "" {
		return false, nil
	}
	p := NewPatcher(c, obj)
	MarkStalled(obj.GetCommonStatus(), obj.GetGeneration(), meshv1alpha1.InvalidSpecReason, UndecodableMessage(obj, note))
	log.FromContext(ctx).Error(nil, "stored object cannot be decoded; it is not reconciled until fixed", "problem", note)
	return true, p.Patch(ctx, obj)
}

// UndecodableMessage is the Stalled message of an object with decode note
// note.
func UndecodableMessage(obj client.Object, note string) string {
	kind := strings.ToLower(reflect.TypeOf(obj).Elem().Name())
	ref := kind + "/" + obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		ref += " -n " + ns
	}
	return fmt.Sprintf("the stored object cannot be read: %s. It was written before Meshplane validated these fields and is not reconciled (deletion waits too) until they are corrected: kubectl edit %s", note, ref)
}
