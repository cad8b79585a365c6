package meshadoption

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// waypointName is the waypoint a wave creates for a namespace whose
// objects need L7 in ambient mode.
const waypointName = "waypoint"

// refusalRecheck is how often a refused wave checks its objects again
// (the adoption does not watch them).
const refusalRecheck = 30 * time.Second

// maxRefusals is how many refused objects a message names.
const maxRefusals = 8

// plan checks, before a wave starts, that the target data plane can
// express every object of the wave's namespaces: each TrafficSplit,
// ZeroTrustPolicy, Canary, ResiliencePolicy, EgressPolicy and
// TelemetryPolicy that resolves to the target mesh is decided and
// translated for the namespace as it will be once enrolled (mesh.Scope of
// the MeshInstall, the namespace's data plane after relabelling). Where
// only a waypoint is missing and the mesh deploys waypoints (ambient), the
// namespace is returned in waypoints: the wave creates one first. Anything
// else refuses the wave, listing the objects and why.
func (r *Reconciler) plan(ctx context.Context, s *scope, wave []adoption.Namespace) ([]string, error) {
	var waypoints, refused []string
	for _, ns := range wave {
		bad, err := r.check(ctx, s, ns, nil)
		if err != nil {
			return nil, err
		}
		if len(bad) == 0 {
			continue
		}
		if wp := r.waypointPlan(s, ns); wp != nil {
			withWP, err := r.check(ctx, s, ns, wp)
			if err != nil {
				return nil, err
			}
			if len(withWP) == 0 {
				waypoints = append(waypoints, ns.Name)
				continue
			}
			bad = withWP
		}
		refused = append(refused, bad...)
	}
	if len(refused) > 0 {
		more := ""
		if len(refused) > maxRefusals {
			more = fmt.Sprintf("; and %d more", len(refused)-maxRefusals)
			refused = refused[:maxRefusals]
		}
		return nil, &outcome.ConflictError{Reason: meshv1alpha1.UnsupportedFeatureReason, After: refusalRecheck, Message: fmt.Sprintf("the next wave cannot start: MeshInstall %s (%s) cannot express %s%s. Change or remove those objects, or take their namespaces out of the adoption; nothing was labelled",
			s.mi.Name, s.enrol.Describe, strings.Join(refused, "; "), more)}
	}
	return waypoints, nil
}

// waypointPlan returns the waypoint a wave would create for ns, or nil
// when the mesh deploys none (or the namespace names its own already).
func (r *Reconciler) waypointPlan(s *scope, ns adoption.Namespace) *mesh.Waypoint {
	wp, ok := r.waypoints(s)
	if !ok || s.enrol.WaypointLabel == "" || ns.Labels[wp.WaypointNamespaceLabel()] != "" {
		return nil
	}
	return &mesh.Waypoint{Field: "spec.mode", Namespace: ns.Name, Name: waypointName, For: "service"}
}

// target returns ns as it will be once enrolled with e.
func (s *scope) target(ns adoption.Namespace, e mesh.Enrolment) (*corev1.Namespace, error) {
	l, a, err := adoption.Enrol(e, ns, s.ma.Name)
	if err != nil {
		return nil, err
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: l, Annotations: a}}, nil
}

// enrolFor is the enrolment of one namespace: with the waypoint label
// when the wave gives it a waypoint.
func (s *scope) enrolFor(waypoint bool) mesh.Enrolment {
	if !waypoint || s.enrol.WaypointLabel == "" {
		return s.enrol
	}
	e := s.enrol
	e.Labels = map[string]string{e.WaypointLabel: waypointName}
	for k, v := range s.enrol.Labels {
		e.Labels[k] = v
	}
	return e
}

// check returns the objects of ns the target mesh cannot express once ns
// is enrolled (with waypoint wp), each as "Kind namespace/name: why".
func (r *Reconciler) check(ctx context.Context, s *scope, ns adoption.Namespace, wp *mesh.Waypoint) ([]string, error) {
	e, _, err := r.enrolOf(s, ns, wp != nil)
	if err != nil {
		return nil, err
	}
	sc, err := r.scopeOf(ctx, s, ns, e, wp)
	if err != nil {
		return nil, err
	}
	objs, err := r.objectsOf(ctx, ns.Name, s.mi.Spec.Provider)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, o := range objs {
		if err := o.express(r.Registry, sc); err != nil {
			bad = append(bad, fmt.Sprintf("%s %s/%s: %s", o.kind, ns.Name, o.name, oneLine(err)))
		}
	}
	return bad, nil
}

// scopeOf is the target mesh's scope for ns once enrolled with e (with
// waypoint wp, programmed).
func (r *Reconciler) scopeOf(ctx context.Context, s *scope, ns adoption.Namespace, e mesh.Enrolment, wp *mesh.Waypoint) (mesh.Scope, error) {
	target, err := s.target(ns, e)
	if err != nil {
		return mesh.Scope{}, err
	}
	provider := s.mi.Spec.Provider
	prov, err := r.Registry.Get(provider)
	if err != nil {
		return mesh.Scope{}, err
	}
	facts, err := mesh.ReadNamespaceFacts(ctx, overlay{Reader: r.Client, ns: target}, prov, ns.Name)
	if err != nil {
		return mesh.Scope{}, err
	}
	if wp != nil {
		if facts.Waypoints == nil {
			facts.Waypoints = map[string]mesh.WaypointFacts{}
		}
		facts.Waypoints[wp.Name] = mesh.WaypointFacts{For: wp.For, Programmed: true}
	}
	return mesh.Scope{Install: mesh.InstallFactsOf(provider, s.mi, r.gatewayAPI()), Namespace: facts}, nil
}

// ensureWaypoint creates the waypoint of ns (not owned: it stays when the
// adoption is deleted, as the namespace stays in the mesh) and reports
// whether the mesh programmed it, and if not why.
func (r *Reconciler) ensureWaypoint(ctx context.Context, s *scope, ns string) (bool, string, error) {
	wi, ok := r.waypoints(s)
	if !ok {
		return false, "", fmt.Errorf("%s deploys no waypoints", s.mi.Spec.Provider)
	}
	w := mesh.Waypoint{Field: "spec.mode", Namespace: ns, Name: waypointName, For: "service"}
	obj := wi.WaypointObject(w)
	cur := obj.DeepCopyObject().(client.Object)
	switch err := r.Get(ctx, client.ObjectKeyFromObject(obj), cur); {
	case apierrors.IsNotFound(err):
		l := obj.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[ownership.ManagedByLabel], l[ownership.OwnerLabel] = ownership.ManagedByValue, ownerValue(s.ma)
		obj.SetLabels(l)
		if err := r.Create(ctx, obj, client.FieldOwner(ownership.FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, "", fmt.Errorf("creating waypoint %s/%s: %w", ns, w.Name, err)
		}
		r.event(s.ma, "WaypointCreated", "Enrol", "created waypoint %s/%s before moving namespace %s to %s", ns, w.Name, ns, s.enrol.Describe)
	case err != nil:
		return false, "", err
	}
	ok, why, err := wi.WaypointProgrammed(ctx, r.Client, w)
	return ok, why, err
}

// dropWaypoint deletes the waypoint the wave created in ns (only if this
// adoption created it).
func (r *Reconciler) dropWaypoint(ctx context.Context, s *scope, ns string) error {
	wi, ok := r.waypoints(s)
	if !ok {
		return nil
	}
	obj := wi.WaypointObject(mesh.Waypoint{Namespace: ns, Name: waypointName, For: "service"})
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if obj.GetLabels()[ownership.OwnerLabel] != ownerValue(s.ma) {
		return nil
	}
	return client.IgnoreNotFound(r.Delete(ctx, obj))
}

// waypoints returns the mesh's waypoint installer, if it deploys
// waypoints.
func (r *Reconciler) waypoints(s *scope) (mesh.WaypointInstaller, bool) {
	p, err := r.Registry.Get(s.mi.Spec.Provider)
	if err != nil {
		return nil, false
	}
	wi, ok := p.(mesh.WaypointInstaller)
	return wi, ok
}

func ownerValue(ma *meshv1alpha1.MeshAdoption) string { return "MeshAdoption." + ma.Name }

// gatewayAPI reports whether the API server serves Gateway API routes.
func (r *Reconciler) gatewayAPI() bool {
	_, err := r.RESTMapper().RESTMapping(httpRouteGK, "v1")
	return err == nil
}

// overlay is a reader that sees one namespace as it will be.
type overlay struct {
	client.Reader
	ns *corev1.Namespace
}

func (o overlay) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if n, ok := obj.(*corev1.Namespace); ok && key.Name == o.ns.Name {
		o.ns.DeepCopyInto(n)
		return nil
	}
	return o.Reader.Get(ctx, key, obj, opts...)
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
