package apply

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Detached returns an owner whose outputs carry the ownership labels (so
// conflicts and pruning work as for any owner) but no owner reference:
//
//   - outputs in another cluster, where the owner's UID means nothing and
//     the garbage collector would delete an object whose owner it cannot
//     find;
//   - outputs that must outlive their owner: a MeshFederation's CAs and
//     bundles stay in place when it is deleted, since pulling a CA out from
//     under a running mesh is an outage; a mesh's generated identity, which
//     a re-created MeshInstall finds again; the revision-tag webhooks an
//     Orphan deletion keeps.
//
// An Applier whose Client talks to another cluster writes there: build one
// per cluster (its Reader is then that cluster's client, uncached).
func Detached(obj client.Object, kind string) Owner {
	return Owner{Object: obj, Kind: kind, Detached: true}
}

// ApplyDetached applies objs for a detached owner as Apply does (ownership
// labels, hash annotation, compare with the cached object first,
// server-side apply with field manager meshplane only on a difference, a
// *ConflictError for a foreign object of an output's name), except that
// with adopt an object of an output's name that Meshplane did not create is
// taken over (MeshInstall's spec.adopt) instead of being a conflict.
// Nothing is pruned: the caller deletes detached outputs it no longer
// wants (Prune).
func (a *Applier) ApplyDetached(ctx context.Context, owner Owner, objs []client.Object, adopt bool) (Result, error) {
	owner.Detached = true
	p, err := a.prepare(ctx, owner, objs, nil, prepareOptions{adopt: adopt, firstUnchecked: true})
	if err != nil {
		return p.Failed(), err
	}
	return p.Commit(ctx)
}
