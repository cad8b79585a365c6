package resiliencepolicy

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outputs"
)

// Finalizer is set while the policy holds fields of its target Service
// (a mesh whose settings are Service annotations), so its deletion
// restores them.
const Finalizer = outputs.SharedFieldsFinalizer

// sharedKinds: a policy never creates a Service, so a Service among its
// outputs (a mesh whose settings are annotations of the target Service) is
// shared: only the fields given are applied, and they are restored when
// released.
var sharedKinds = []schema.GroupKind{{Kind: "Service"}}

// owner is the apply owner of rp.
func owner(rp *meshv1alpha1.ResiliencePolicy) apply.Owner {
	return apply.Owner{Object: rp, Kind: Kind, SharedFields: rp.Status.SharedFields, SharedKinds: sharedKinds}
}

// record points at rp's inventory and shared fields.
func record(rp *meshv1alpha1.ResiliencePolicy) outputs.SharedRecord {
	return outputs.SharedRecord{Inventory: &rp.Status.Inventory, Fields: &rp.Status.SharedFields, Kinds: sharedKinds}
}
