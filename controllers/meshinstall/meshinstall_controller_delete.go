package meshinstall

import (
	"context"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
)

// reconcileDelete applies the deletion policy. Orphan (the default) leaves
// the mesh running; Uninstall removes the control plane's releases in
// reverse install order. Either way the MeshRevisions this MeshInstall
// created go first (each applies the same policy to its revision), CRD-only
// charts are never uninstalled, and every CRD is kept.
func (r *Reconciler) reconcileDelete(ctx context.Context, mi *meshv1alpha1.MeshInstall) (result, error) {
	if !controllerutil.ContainsFinalizer(mi, Finalizer) {
		return result{phase: phaseDelete}, nil
	}
	out := result{phase: phaseDelete, deleting: "deleting with deletionPolicy " + string(policy(mi))}
	pending, err := r.deleteRevisions(ctx, mi)
	if err != nil || pending {
		out.requeueAfter = time.Second
		return out, err
	}
	// Waypoints go whatever the policy: they are Meshplane's outputs in
	// the users' namespaces, whose labels return to their prior values.
	if err := r.releaseWaypoints(ctx, mi, nil, nil); err != nil {
		return out, err
	}
	// The control-plane namespace's labels go with the control plane:
	// released after an uninstall, or when nothing was ever installed (a
	// failed install); an orphaned running mesh keeps them, and their
	// record.
	installed := len(mi.Status.Releases) > 0
	if policy(mi) == meshv1alpha1.DeletionUninstall {
		if err := r.uninstall(ctx, mi); err != nil {
			return out, err
		}
	} else if installed {
		r.event(mi, "Orphaned", "Delete", "deletionPolicy Orphan: %s keeps running", mi.Spec.Provider)
	}
	if policy(mi) == meshv1alpha1.DeletionUninstall || !installed {
		p, err := r.Registry.Installer(mi.Spec.Provider)
		if err != nil {
			return out, err
		}
		if err := r.releaseNamespace(ctx, mi, p); err != nil {
			return out, err
		}
	}
	controllerutil.RemoveFinalizer(mi, Finalizer)
	return out, nil
}

// deleteRevisions deletes the MeshRevisions this MeshInstall created and
// reports whether any is still there.
func (r *Reconciler) deleteRevisions(ctx context.Context, mi *meshv1alpha1.MeshInstall) (bool, error) {
	revs, err := r.revisions(ctx, mi)
	if err != nil {
		return false, err
	}
	pending := false
	for i := range revs {
		rv := &revs[i]
		if !ownership.IsOwnedBy(rv, Kind, "", mi.Name) {
			continue
		}
		pending = true
		if rv.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, rv); client.IgnoreNotFound(err) != nil {
				return true, err
			}
		}
	}
	return pending, nil
}

func policy(mi *meshv1alpha1.MeshInstall) meshv1alpha1.DeletionPolicy {
	if mi.Spec.DeletionPolicy == "" {
		return meshv1alpha1.DeletionOrphan
	}
	return mi.Spec.DeletionPolicy
}

// uninstall removes the releases (reverse order, CRD-only charts kept, the
// revision chart left to the MeshRevisions) and the revision-tag webhooks
// Meshplane created.
func (r *Reconciler) uninstall(ctx context.Context, mi *meshv1alpha1.MeshInstall) error {
	p, err := r.Registry.Installer(mi.Spec.Provider)
	if err != nil {
		return err
	}
	s := &scope{mi: mi, p: p, ns: mi.Status.Namespace}
	s.rev, _ = p.(mesh.Revisioner)
	if s.ns == "" {
		s.ns = p.DefaultNamespace()
	}
	charts := p.Charts(mi)
	slices.Reverse(charts)
	for _, c := range charts {
		if c.CRDsOnly || (s.revisionBased() && s.isRevisionChart(c)) {
			continue
		}
		name, ns := releaseName(mi, c), c.ReleaseNamespace(s.ns)
		if err := r.Helm.Uninstall(ctx, name, ns, false, 0); err != nil {
			return err
		}
		r.event(mi, "Uninstalled", "Delete", "uninstalled Helm release %s/%s (CRDs kept)", ns, name)
	}
	if err := r.pruneExtensions(ctx, s); err != nil {
		return err
	}
	if s.rev != nil {
		w := mesh.TagWriter{Reader: r.Client, Applier: r.applier(r.Client), Owner: apply.Owner{Object: mi, Kind: Kind}}
		if _, err := s.rev.PruneTags(ctx, w, nil); err != nil {
			return err
		}
	}
	mi.Status.Releases = nil
	return nil
}

// pruneExtensions uninstalls the recorded releases of extensions (charts
// whose release lives outside the control-plane namespace, e.g. Linkerd's
// multicluster extension) that the install no longer lists, and forgets
// them. A chart of the control plane itself that leaves the list (Istio's
// ztunnel after a profile change) is never uninstalled here: pods may
// still depend on it.
func (r *Reconciler) pruneExtensions(ctx context.Context, s *scope) error {
	wanted := map[string]bool{}
	for _, c := range s.p.Charts(s.mi) {
		wanted[c.ReleaseNamespace(s.ns)+"/"+releaseName(s.mi, c)] = true
	}
	kept := s.mi.Status.Releases[:0:0]
	for _, rel := range s.mi.Status.Releases {
		if rel.Namespace == "" || rel.Namespace == s.ns || wanted[rel.Namespace+"/"+rel.Name] {
			kept = append(kept, rel)
			continue
		}
		if err := r.Helm.Uninstall(ctx, rel.Name, rel.Namespace, false, 0); err != nil {
			return err
		}
		r.event(s.mi, "Uninstalled", "Delete", "uninstalled Helm release %s/%s: the install no longer lists chart %s (CRDs kept)", rel.Namespace, rel.Name, rel.Chart)
	}
	s.mi.Status.Releases = kept
	return nil
}
