package apply

import "sigs.k8s.io/controller-runtime/pkg/client"

// Detached returns an owner whose outputs carry the ownership labels (so
// conflicts and pruning work as for any owner) but no owner reference:
//
//   - outputs in another cluster, where the owner's UID means nothing and
//     the garbage collector would delete an object whose owner it cannot
//     find;
//   - outputs that must outlive their owner: a MeshFederation's CAs and
//     bundles stay in place when it is deleted, since pulling a CA out from
//     under a running mesh is an outage.
//
// An Applier whose Client talks to another cluster writes there: build one
// per cluster (its Reader is then that cluster's client, uncached).
func Detached(obj client.Object, kind string) Owner {
	return Owner{Object: obj, Kind: kind, Detached: true}
}
