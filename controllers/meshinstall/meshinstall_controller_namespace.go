package meshinstall

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
)

// PriorLabelsAnnotation records, on a control-plane namespace Meshplane
// did not create, the value each label Meshplane set had before (JSON
// object; null for a label that was absent). Deleting the MeshInstall
// restores those values and removes the annotation.
const PriorLabelsAnnotation = "meshplane.io/prior-labels"

// ensureNamespace creates the control-plane namespace when it is missing
// and sets the labels the mesh needs on it (mesh.ControlPlaneLabeler). It
// runs only after every changed chart rendered: nothing is written to a
// namespace for a release that cannot be installed.
func (r *Reconciler) ensureNamespace(ctx context.Context, s *scope) error {
	if err := r.ensureLabelled(ctx, s.mi, s.ns, controlPlaneLabels(s.p, s.ns)); err != nil {
		return err
	}
	for _, c := range s.charts {
		if ns := c.ReleaseNamespace(s.ns); ns != s.ns {
			if err := r.ensureLabelled(ctx, s.mi, ns, c.NamespaceLabels); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureLabelled creates namespace ns with the labels want, or sets them on
// the namespace that exists (recording prior values on one this install did
// not create).
func (r *Reconciler) ensureLabelled(ctx context.Context, mi *meshv1alpha1.MeshInstall, ns string, want map[string]string) error {
	var cur corev1.Namespace
	err := r.Get(ctx, client.ObjectKey{Name: ns}, &cur)
	if client.IgnoreNotFound(err) != nil {
		return err
	}
	if err == nil {
		return r.labelNamespace(ctx, mi, &cur, want)
	}
	labels := ownership.Labels(Kind, "", mi.Name)
	maps.Copy(labels, want)
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
	if err := r.Create(ctx, obj, client.FieldOwner(ownership.FieldManager)); err != nil && client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	r.event(mi, "NamespaceCreated", "Create", "created control-plane namespace %s", ns)
	return nil
}

func controlPlaneLabels(p mesh.Installer, ns string) map[string]string {
	if l, ok := p.(mesh.ControlPlaneLabeler); ok {
		return l.ControlPlaneLabels(ns)
	}
	return map[string]string{}
}

// labelNamespace sets the labels of want that cur lacks. On a namespace
// this MeshInstall did not create, the prior value of each label it sets
// is recorded in PriorLabelsAnnotation in the same patch (first value
// only: a label already recorded keeps its original prior value).
func (r *Reconciler) labelNamespace(ctx context.Context, mi *meshv1alpha1.MeshInstall, cur *corev1.Namespace, want map[string]string) error {
	var missing []string
	for k, v := range want {
		if cur.Labels[k] != v {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if !ownership.IsOwnedBy(cur, Kind, "", mi.Name) {
		prior, err := priorLabels(cur)
		if err != nil {
			return err
		}
		for _, k := range missing {
			if _, ok := prior[k]; ok {
				continue
			}
			if v, ok := cur.Labels[k]; ok {
				prior[k] = &v
			} else {
				prior[k] = nil
			}
		}
		raw, _ := json.Marshal(prior)
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, PriorLabelsAnnotation, string(raw))
	}
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	for _, k := range missing {
		cur.Labels[k] = want[k]
	}
	if err := r.Patch(ctx, cur, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
		return fmt.Errorf("labelling control-plane namespace %s: %w", cur.Name, err)
	}
	r.event(mi, "NamespaceLabelled", "Patch", "labelled namespace %s for %s: %v (prior values recorded in annotation %s)",
		cur.Name, mi.Spec.Provider, missing, PriorLabelsAnnotation)
	return nil
}

// priorLabels reads PriorLabelsAnnotation.
func priorLabels(ns *corev1.Namespace) (map[string]*string, error) {
	prior := map[string]*string{}
	raw, ok := ns.Annotations[PriorLabelsAnnotation]
	if !ok {
		return prior, nil
	}
	if err := json.Unmarshal([]byte(raw), &prior); err != nil {
		return nil, fmt.Errorf("namespace %s: annotation %s is not a JSON object of label values (%w); fix or remove it", ns.Name, PriorLabelsAnnotation, err)
	}
	return prior, nil
}

// releaseNamespace gives a control-plane namespace Meshplane did not
// create its recorded labels back: each label Meshplane set, still at the
// value Meshplane set, returns to its prior value (or is removed when it
// was absent); a label someone changed since is left alone. The record
// annotation is removed.
func (r *Reconciler) releaseNamespace(ctx context.Context, mi *meshv1alpha1.MeshInstall, p mesh.Installer) error {
	ns := mi.Status.Namespace
	if ns == "" {
		ns = namespaceOf(mi, p)
	}
	if done, err := r.restoreLabels(ctx, ns, controlPlaneLabels(p, ns)); err != nil || !done {
		return err
	}
	r.event(mi, "NamespaceReleased", "Patch", "restored the labels of namespace %s to their values before %s", ns, mi.Name)
	return nil
}

// restoreLabels gives namespace ns back the recorded prior values of the
// labels in set: each one still at the value Meshplane set returns to its
// prior value (or is removed when it was absent); one someone changed
// since is left alone. Their records leave PriorLabelsAnnotation, which is
// removed once empty. A namespace without records is left alone; done
// reports whether it had records.
func (r *Reconciler) restoreLabels(ctx context.Context, ns string, set map[string]string) (done bool, err error) {
	var cur corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: ns}, &cur); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if _, ok := cur.Annotations[PriorLabelsAnnotation]; !ok {
		return false, nil
	}
	prior, err := priorLabels(&cur)
	if err != nil {
		return false, err
	}
	patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
	found := false
	for k, w := range set {
		v, ok := prior[k]
		if !ok {
			continue
		}
		found = true
		delete(prior, k)
		if cur.Labels[k] != w {
			continue
		}
		if v == nil {
			delete(cur.Labels, k)
		} else {
			cur.Labels[k] = *v
		}
	}
	if !found {
		return false, nil
	}
	if len(prior) == 0 {
		delete(cur.Annotations, PriorLabelsAnnotation)
	} else {
		raw, _ := json.Marshal(prior)
		cur.Annotations[PriorLabelsAnnotation] = string(raw)
	}
	if err := r.Patch(ctx, &cur, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
		return false, fmt.Errorf("restoring the labels of namespace %s: %w", ns, err)
	}
	return true, nil
}
