package outputs

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/meshplane/meshplane/internal/apply"
)

// TestOwnWrites: an output's creation and an update that moved its
// applied-hash to a new value are the owner's own writes and reconcile
// nothing; an update that kept or removed the hash (another writer) and a
// deletion reconcile the owner, so drift is repaired at once.
func TestOwnWrites(t *testing.T) {
	obj := func(hash string) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "out"}}
		if hash != "" {
			cm.Annotations = map[string]string{apply.HashAnnotation: hash}
		}
		return cm
	}
	if ownWrites.Create(event.CreateEvent{Object: obj("a")}) {
		t.Error("creation passed")
	}
	if !ownWrites.Delete(event.DeleteEvent{Object: obj("a")}) {
		t.Error("deletion dropped")
	}
	for _, tc := range []struct {
		old, now string
		pass     bool
	}{
		{"a", "b", false}, // the owner applied a new desired state
		{"", "a", false},  // the owner's first apply over an adopted object
		{"a", "a", true},  // another writer changed a field
		{"a", "", true},   // another writer replaced the object
	} {
		if got := ownWrites.Update(event.UpdateEvent{ObjectOld: obj(tc.old), ObjectNew: obj(tc.now)}); got != tc.pass {
			t.Errorf("hash %q → %q: passed %v, want %v", tc.old, tc.now, got, tc.pass)
		}
	}
}
