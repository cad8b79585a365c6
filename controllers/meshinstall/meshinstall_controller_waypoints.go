package meshinstall

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// waypointRecheck is how often an unprogrammed waypoint is looked at
// again: the controller does not watch the mesh's waypoint objects.
const waypointRecheck = 30 * time.Second

// reconcileWaypoints deploys the waypoints the MeshInstall asks for (once
// its control plane is installed), labels their namespaces with the
// mesh's waypoint label (prior values recorded, as on the control-plane
// namespace), removes the waypoints of entries that went, restoring their
// namespaces' labels, and records them all in status.waypoints. An entry
// for a namespace that is missing or not in the mesh's ambient data plane
// is refused (Stalled, naming the field); the other entries are still
// deployed. It reports whether a waypoint is still unprogrammed.
func (r *Reconciler) reconcileWaypoints(ctx context.Context, mi *meshv1alpha1.MeshInstall, p mesh.Installer) (bool, error) {
	wp, ok := p.(mesh.WaypointInstaller)
	if !ok {
		return false, r.releaseWaypoints(ctx, mi, nil, nil)
	}
	var kept []mesh.Waypoint
	var refusals []string
	for _, w := range wp.Waypoints(mi) {
		msg, err := r.waypointRefusal(ctx, wp, w)
		if err != nil {
			return false, err
		}
		if msg != "" {
			refusals = append(refusals, msg)
			continue
		}
		kept = append(kept, w)
	}
	if err := r.releaseWaypoints(ctx, mi, wp, kept); err != nil {
		return false, err
	}
	statuses := make([]meshv1alpha1.WaypointStatus, 0, len(kept))
	pending := false
	for _, w := range kept {
		st, err := r.ensureWaypoint(ctx, mi, wp, w)
		if err != nil {
			return false, err
		}
		pending = pending || !st.Programmed
		statuses = append(statuses, st)
	}
	mi.Status.Waypoints = statuses
	if len(refusals) > 0 {
		return false, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%s", strings.Join(refusals, "; "))
	}
	return pending, nil
}

// waypointRefusal says why w cannot be deployed: its namespace is missing
// or not ambient. Empty when it can.
func (r *Reconciler) waypointRefusal(ctx context.Context, wp mesh.WaypointInstaller, w mesh.Waypoint) (string, error) {
	var ns corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: w.Namespace}, &ns); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return "", err
		}
		return fmt.Sprintf("%s.namespace: namespace %q does not exist; create it (ambient) or remove the entry", w.Field, w.Namespace), nil
	}
	if wp.DataPlane(&ns).Mode != mesh.Ambient {
		return fmt.Sprintf("%s.namespace: namespace %q is not in the ambient data plane, and waypoints serve only ambient namespaces; "+
			"label it istio.io/dataplane-mode=ambient or remove the entry", w.Field, w.Namespace), nil
	}
	return "", nil
}

// ensureWaypoint applies w's object, labels its namespace and reads
// whether the mesh programmed it.
func (r *Reconciler) ensureWaypoint(ctx context.Context, mi *meshv1alpha1.MeshInstall, wp mesh.WaypointInstaller, w mesh.Waypoint) (meshv1alpha1.WaypointStatus, error) {
	st := meshv1alpha1.WaypointStatus{Namespace: w.Namespace, Name: w.Name}
	res, err := r.applier(r.Client).ApplyDetached(ctx, apply.Detached(mi, Kind), []client.Object{wp.WaypointObject(w)}, false)
	if err != nil {
		return st, err
	}
	for _, c := range res.Changes {
		if c.Action != apply.Unchanged {
			r.event(mi, "WaypointApplied", "Apply", "waypoint for %s traffic: %s", w.For, c)
		}
	}
	var ns corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: w.Namespace}, &ns); err != nil {
		return st, err
	}
	if err := r.labelNamespace(ctx, mi, &ns, map[string]string{wp.WaypointNamespaceLabel(): w.Name}); err != nil {
		return st, err
	}
	st.Programmed, st.Message, err = wp.WaypointProgrammed(ctx, r.Client, w)
	return st, err
}

// releaseWaypoints deletes the waypoints status.waypoints records that
// are not in keep, and restores the waypoint label of each namespace that
// no longer has one. wp nil: every recorded waypoint goes.
func (r *Reconciler) releaseWaypoints(ctx context.Context, mi *meshv1alpha1.MeshInstall, wp mesh.WaypointInstaller, keep []mesh.Waypoint) error {
	if len(mi.Status.Waypoints) == 0 {
		return nil
	}
	if wp == nil {
		var err error
		if wp, err = r.waypointInstaller(mi); err != nil || wp == nil {
			return err
		}
	}
	var refs []meshv1alpha1.ObjectReference
	var left []meshv1alpha1.WaypointStatus
	for _, st := range mi.Status.Waypoints {
		i := slices.IndexFunc(keep, func(w mesh.Waypoint) bool { return w.Namespace == st.Namespace })
		if i >= 0 && keep[i].Name == st.Name {
			left = append(left, st)
			continue
		}
		ref, err := r.waypointRef(wp, st)
		if err != nil {
			return err
		}
		refs = append(refs, ref)
		if i < 0 {
			label := map[string]string{wp.WaypointNamespaceLabel(): st.Name}
			if _, err := r.restoreLabels(ctx, st.Namespace, label); err != nil {
				return err
			}
		}
	}
	changes, err := r.applier(r.Client).Prune(ctx, apply.Detached(mi, Kind), refs)
	if err != nil {
		return err
	}
	for _, c := range changes {
		r.event(mi, "WaypointRemoved", "Delete", "waypoint no longer asked for: %s", c)
	}
	mi.Status.Waypoints = left
	return nil
}

// waypointInstaller returns mi's provider as a WaypointInstaller, nil
// when its mesh deploys no waypoints.
func (r *Reconciler) waypointInstaller(mi *meshv1alpha1.MeshInstall) (mesh.WaypointInstaller, error) {
	p, err := r.Registry.Installer(mi.Spec.Provider)
	if err != nil {
		return nil, err
	}
	wp, _ := p.(mesh.WaypointInstaller)
	return wp, nil
}

// waypointRef is the inventory reference of a recorded waypoint.
func (r *Reconciler) waypointRef(wp mesh.WaypointInstaller, st meshv1alpha1.WaypointStatus) (meshv1alpha1.ObjectReference, error) {
	obj := wp.WaypointObject(mesh.Waypoint{Namespace: st.Namespace, Name: st.Name})
	gvk, err := apiutil.GVKForObject(obj, r.Scheme())
	if err != nil {
		return meshv1alpha1.ObjectReference{}, err
	}
	return ref(gvk, st.Namespace, st.Name), nil
}

func ref(gvk schema.GroupVersionKind, ns, name string) meshv1alpha1.ObjectReference {
	return meshv1alpha1.ObjectReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: ns, Name: name}
}
