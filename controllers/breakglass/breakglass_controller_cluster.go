package breakglass

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
)

// secretName is the record Secret's name.
func secretName(bg *meshv1alpha1.BreakGlass) string {
	n := "breakglass-" + bg.Name
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(bg.Name))
	return n[:240] + "-" + hex.EncodeToString(sum[:])[:12]
}

// typed reports whether ref's kind is read through the cache as a typed
// object; the mesh policy kinds are read as unstructured (uncached).
func typed(ref incident.ObjectRef) client.Object {
	switch ref.GVK() {
	case corev1.SchemeGroupVersion.WithKind("Namespace"):
		return &corev1.Namespace{}
	case admissionregistrationv1.SchemeGroupVersion.WithKind("MutatingWebhookConfiguration"):
		return &admissionregistrationv1.MutatingWebhookConfiguration{}
	case admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingWebhookConfiguration"):
		return &admissionregistrationv1.ValidatingWebhookConfiguration{}
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		return &appsv1.Deployment{}
	case appsv1.SchemeGroupVersion.WithKind("StatefulSet"):
		return &appsv1.StatefulSet{}
	case appsv1.SchemeGroupVersion.WithKind("DaemonSet"):
		return &appsv1.DaemonSet{}
	}
	return nil
}

// getLive reads an object as unstructured JSON through the cache.
func (r *Reconciler) getLive(ctx context.Context, ref incident.ObjectRef) (map[string]any, error) {
	return r.read(ctx, r.Client, ref)
}

// read reads an object as unstructured JSON with reader.
func (r *Reconciler) read(ctx context.Context, reader client.Reader, ref incident.ObjectRef) (map[string]any, error) {
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	if o := typed(ref); o != nil {
		if err := reader.Get(ctx, key, o); err != nil {
			return nil, err
		}
		gv := schema.GroupVersion{Group: ref.Group, Version: ref.Version}
		return toMap(o, gv.String(), ref.Kind)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ref.GVK())
	if err := reader.Get(ctx, key, u); err != nil {
		return nil, err
	}
	return u.Object, nil
}

// toMap converts a typed object to unstructured JSON with its type set.
func toMap(o runtime.Object, apiVersion, kind string) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	m["apiVersion"], m["kind"] = apiVersion, kind
	return m, nil
}

// webhooks lists every mutating and validating webhook configuration.
func (r *Reconciler) webhooks(ctx context.Context) (mut, val []map[string]any, err error) {
	var ml admissionregistrationv1.MutatingWebhookConfigurationList
	if err := r.Client.List(ctx, &ml); err != nil {
		return nil, nil, err
	}
	for i := range ml.Items {
		m, err := toMap(&ml.Items[i], "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")
		if err != nil {
			return nil, nil, err
		}
		mut = append(mut, m)
	}
	var vl admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := r.Client.List(ctx, &vl); err != nil {
		return nil, nil, err
	}
	for i := range vl.Items {
		m, err := toMap(&vl.Items[i], "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
		if err != nil {
			return nil, nil, err
		}
		val = append(val, m)
	}
	return mut, val, nil
}

// policies lists the mesh's policies in scope: those Meshplane generated
// for ZeroTrustPolicies, EgressPolicies and ProxyPolicies (what can block
// traffic: mTLS, default-deny, token requirements, egress allow-lists, a
// sidecar's outbound scope), and with foreign
// also those it did not create.
// Policies other Meshplane kinds own are never relaxed.
func (r *Reconciler) policies(ctx context.Context, d mesh.BreakGlassDriver, inScope map[string]bool, foreign bool) ([]map[string]any, error) {
	ztp, egp, pxp := strings.ToLower("ZeroTrustPolicy")+".", strings.ToLower("EgressPolicy")+".", strings.ToLower("ProxyPolicy")+"."
	var out []map[string]any
	for _, gvk := range d.PolicyKinds() {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := r.Client.List(ctx, list); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue // the mesh's CRDs are not installed
			}
			return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if !inScope[p.GetNamespace()] {
				continue
			}
			managed := ownership.IsManaged(p)
			owner := p.GetLabels()[ownership.OwnerLabel]
			if (managed && (strings.HasPrefix(owner, ztp) || strings.HasPrefix(owner, egp) || strings.HasPrefix(owner, pxp))) || (!managed && foreign) {
				out = append(out, p.Object)
			}
		}
	}
	return out, nil
}

// workloads lists Deployments, StatefulSets and DaemonSets in scope.
func (r *Reconciler) workloads(ctx context.Context, inScope map[string]bool) ([]map[string]any, error) {
	var out []map[string]any
	add := func(o client.Object, kind string) error {
		if !inScope[o.GetNamespace()] {
			return nil
		}
		m, err := toMap(o, "apps/v1", kind)
		if err == nil {
			out = append(out, m)
		}
		return err
	}
	var dl appsv1.DeploymentList
	if err := r.Client.List(ctx, &dl); err != nil {
		return nil, err
	}
	for i := range dl.Items {
		if err := add(&dl.Items[i], "Deployment"); err != nil {
			return nil, err
		}
	}
	var sl appsv1.StatefulSetList
	if err := r.Client.List(ctx, &sl); err != nil {
		return nil, err
	}
	for i := range sl.Items {
		if err := add(&sl.Items[i], "StatefulSet"); err != nil {
			return nil, err
		}
	}
	var dsl appsv1.DaemonSetList
	if err := r.Client.List(ctx, &dsl); err != nil {
		return nil, err
	}
	for i := range dsl.Items {
		if err := add(&dsl.Items[i], "DaemonSet"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// trafficRoutes lists the TrafficSplits and Canaries in scope and puts an
// Event on each: their own controllers pin them while the BreakGlass is
// active.
func (r *Reconciler) trafficRoutes(ctx context.Context, bg *meshv1alpha1.BreakGlass, inScope map[string]bool) ([]string, error) {
	var out []string
	note := fmt.Sprintf("BreakGlass %s pins traffic to the stable backend while it is active (%s)", bg.Name, bg.Spec.Reason)
	var ts meshv1alpha1.TrafficSplitList
	if err := r.Client.List(ctx, &ts); err != nil {
		return nil, err
	}
	for i := range ts.Items {
		if inScope[ts.Items[i].Namespace] {
			out = append(out, "TrafficSplit/"+ts.Items[i].Namespace+"/"+ts.Items[i].Name)
			r.Events.Eventf(&ts.Items[i], bg, corev1.EventTypeNormal, "BreakGlassPinned", "BreakGlass", "%s", note)
		}
	}
	var cs meshv1alpha1.CanaryList
	if err := r.Client.List(ctx, &cs); err != nil {
		return nil, err
	}
	for i := range cs.Items {
		if inScope[cs.Items[i].Namespace] {
			out = append(out, "Canary/"+cs.Items[i].Namespace+"/"+cs.Items[i].Name)
			r.Events.Eventf(&cs.Items[i], bg, corev1.EventTypeNormal, "BreakGlassPinned", "BreakGlass", "%s", note)
		}
	}
	return out, nil
}

// serves reports whether the target mesh serves ns: through the
// MeshInstall (discovery) when the target names one, else by the
// provider's own membership rules.
func serves(reg *mesh.Registry, d mesh.BreakGlassDriver, mi *meshv1alpha1.MeshInstall, ns *corev1.Namespace, installs []meshv1alpha1.MeshInstall) bool {
	if mi != nil {
		res, err := discovery.ForNamespace(reg, ns, installs)
		return err == nil && res.MeshInstall == mi.Name
	}
	switch d.NamespaceMembership(ns).Level {
	case mesh.ExplicitMember, mesh.ImplicitMember:
		return true
	}
	return false
}

type labelsLike = labels.Set

type selectorAdapter struct{ s labels.Selector }

func (a selectorAdapter) Matches(l labelsLike) bool { return a.s.Matches(l) }

// runStep engages or restores the objects of one step with bounded
// concurrency: one cache read and at most one merge patch per object.
func (r *Reconciler) runStep(ctx context.Context, bg *meshv1alpha1.BreakGlass, objs []incident.ObjectChanges, restoring bool, out *result) error {
	workers := r.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan incident.ObjectChanges)
	for range min(workers, len(objs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for oc := range work {
				applied, wrote, conflicts, err := r.one(ctx, bg, oc, restoring)
				mu.Lock()
				out.applied += applied
				out.conflicts = append(out.conflicts, conflicts...)
				if wrote {
					out.writes++
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, oc := range objs {
		work <- oc
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// one engages or restores one object.
func (r *Reconciler) one(ctx context.Context, bg *meshv1alpha1.BreakGlass, oc incident.ObjectChanges, restoring bool) (applied int, wrote bool, conflicts []incident.Conflict, err error) {
	live, err := r.getLive(ctx, oc.Object)
	if apierrors.IsNotFound(err) {
		if restoring {
			// Deleted during the incident: nothing to put back, and it is
			// not recreated.
			c := incident.Conflict{Change: oc.Changes[0], Current: incident.Absent, Deleted: true}
			return len(oc.Changes), false, []incident.Conflict{c}, nil
		}
		return len(oc.Changes), false, nil, nil
	}
	if err != nil {
		return 0, false, nil, fmt.Errorf("reading %s: %w", oc.Object, err)
	}
	decide := incident.Engage
	if restoring {
		decide = incident.Restore
	}
	d, err := decide(live, oc.Changes)
	if err != nil {
		return 0, false, nil, err
	}
	if (restoring && len(d.Writes) < len(oc.Changes)) || len(d.Conflicts) > 0 {
		// The cache may lag behind this controller's own last writes: a
		// field it shows as never applied (restoring) or changed by someone
		// else is confirmed with an uncached read before it is skipped or
		// reported.
		if live, err = r.read(ctx, r.APIReader, oc.Object); err != nil {
			if apierrors.IsNotFound(err) {
				return len(oc.Changes), false, nil, nil
			}
			return 0, false, nil, fmt.Errorf("reading %s: %w", oc.Object, err)
		}
		if d, err = decide(live, oc.Changes); err != nil {
			return 0, false, nil, err
		}
	}
	mod := &unstructured.Unstructured{Object: d.Modified}
	if d.Modified != nil {
		orig := &unstructured.Unstructured{Object: live}
		var opts []client.MergeFromOption
		if oc.Object.Kind != "Namespace" {
			// Lists (webhooks) and specs are replaced whole by a merge
			// patch: fail on a concurrent change rather than lose it.
			opts = append(opts, client.MergeFromWithOptimisticLock{})
		}
		if err := r.Writer.Patch(ctx, mod, client.MergeFromWithOptions(orig, opts...)); err != nil {
			if apierrors.IsNotFound(err) {
				return len(oc.Changes), false, nil, nil
			}
			return d.Done, false, d.Conflicts, fmt.Errorf("patching %s: %w", oc.Object, err)
		}
		wrote = true
		verb, reason := "set", "BreakGlassEngaged"
		if restoring {
			verb, reason = "restored", "BreakGlassRestored"
		}
		fields := make([]string, len(d.Writes))
		for i, c := range d.Writes {
			fields[i] = c.Field()
		}
		r.Events.Eventf(mod, bg, corev1.EventTypeNormal, reason, "BreakGlass", "BreakGlass %s %s %s", bg.Name, verb, strings.Join(fields, ", "))
	} else {
		mod.Object = live
	}
	for _, c := range d.Conflicts {
		r.Events.Eventf(mod, bg, corev1.EventTypeWarning, "BreakGlassConflict", "BreakGlass", "BreakGlass %s: %s %s", bg.Name, c.Change.Field(), c.Message(restoring))
	}
	return d.Done + len(d.Writes), wrote, d.Conflicts, nil
}
