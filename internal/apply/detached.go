package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/ownership"
)

// ApplyDetached applies objs for owner as Apply does (ownership labels,
// hash annotation, compare with the cached object first, server-side apply
// with field manager meshplane only on a difference, a *ConflictError for a
// foreign object of an output's name), with two differences:
//
//   - The outputs get no owner reference, so they outlive their owner: a
//     mesh's generated identity, which a re-created MeshInstall finds
//     again, or the revision-tag webhooks an Orphan deletion keeps.
//   - With adopt, an object of an output's name that Meshplane did not
//     create is taken over (spec.adopt) instead of being a conflict.
//
// Nothing is pruned: the caller deletes detached outputs it no longer
// wants.
func (a *Applier) ApplyDetached(ctx context.Context, owner Owner, objs []client.Object, adopt bool) (Result, error) {
	var res Result
	desired, err := a.Desired(owner, objs)
	if err != nil {
		return res, err
	}
	ownerValue := ownership.OwnerValue(owner.Kind, owner.Object.GetNamespace(), owner.Object.GetName())
	lives := make([]map[string]any, len(desired))
	for i, u := range desired {
		if err := detach(u); err != nil {
			return res, err
		}
		live, err := a.get(ctx, u.GroupVersionKind(), u.GetNamespace(), u.GetName())
		if err != nil && !apierrors.IsNotFound(err) {
			return res, err
		}
		if live != nil && !adopt {
			if err := conflictWith(u, live, ownerValue); err != nil {
				return res, err
			}
		}
		lives[i] = live
	}
	for i, u := range desired {
		ref := refOf(u)
		res.Inventory = append(res.Inventory, ref)
		if lives[i] != nil && Contains(lives[i], u.Object) {
			res.Changes.add(ref, Unchanged)
			continue
		}
		if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()),
			client.FieldOwner(ownership.FieldManager), client.ForceOwnership); err != nil {
			return res, fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		if lives[i] == nil {
			res.Changes.add(ref, Created)
		} else {
			res.Changes.add(ref, Configured)
		}
	}
	sortRefs(res.Inventory)
	return res, nil
}

// detach removes the owner reference and hashes the object again without
// it.
func detach(u *unstructured.Unstructured) error {
	u.SetOwnerReferences(nil)
	ann := u.GetAnnotations()
	delete(ann, HashAnnotation)
	u.SetAnnotations(ann)
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[HashAnnotation] = hex.EncodeToString(sum[:8])
	u.SetAnnotations(ann)
	return nil
}

// conflictWith returns a *ConflictError when live is not the owner's.
func conflictWith(u *unstructured.Unstructured, live map[string]any, ownerValue string) error {
	labels := (&unstructured.Unstructured{Object: live}).GetLabels()
	got, managed := labels[ownership.OwnerLabel], labels[ownership.ManagedByLabel] == ownership.ManagedByValue
	if got == ownerValue && managed {
		return nil
	}
	if !managed {
		got = ""
	}
	return &ConflictError{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), OwnedBy: got}
}
