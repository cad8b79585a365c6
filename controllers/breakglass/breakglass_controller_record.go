package breakglass

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// RecordFinalizer protects the record Secret: it is deleted only by the
// BreakGlass controller, after the restore.
const RecordFinalizer = "meshplane.io/break-glass-record"

// AcceptRecordLossAnnotation, set to "true" on a BreakGlass whose record
// was lost, lets its deletion finish without restoring: Meshplane removes
// only the marks it can identify without the record (its NotIn
// requirement on the webhooks and its coverage annotation).
const AcceptRecordLossAnnotation = "meshplane.io/accept-record-loss"

// maxStatusRecord is the largest compressed record copied into
// status.record.data.
const maxStatusRecord = 64 * 1024

// loadRecord reads the record Secret uncached; nil when there is none. A
// record of another BreakGlass of the same name (recreated) is refused, so
// is one whose digest differs from status.record. A Secret found without
// the record finalizer (recreated by hand) gets it back.
func (r *Reconciler) loadRecord(ctx context.Context, bg *meshv1alpha1.BreakGlass) (*incident.Record, []byte, error) {
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.OperatorNamespace, Name: secretName(bg)}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("reading the record Secret: %w", err)
	}
	data := s.Data[incident.RecordKey]
	if cp := bg.Status.Record; cp != nil && cp.SHA256 != digest(data) {
		return nil, nil, outcome.Stalled(meshv1alpha1.RecordLostReason,
			"record Secret %s/%s was replaced: its %s has SHA-256 %s, status.record.sha256 is %s; nothing is restored from it. %s",
			s.Namespace, s.Name, incident.RecordKey, digest(data), cp.SHA256, recovery(bg, s.Namespace, s.Name))
	}
	rec, err := incident.DecodeRecord(data)
	if err != nil {
		return nil, nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "Secret %s/%s: %v; restore by hand from its contents", s.Namespace, s.Name, err)
	}
	if rec.UID != string(bg.UID) {
		return nil, nil, outcome.Stalled(meshv1alpha1.ConflictReason,
			"Secret %s/%s holds the record of an earlier BreakGlass %s (uid %s); it was not restored — restore it by hand or delete the Secret",
			s.Namespace, s.Name, rec.BreakGlass, rec.UID)
	}
	if !controllerutil.ContainsFinalizer(s, RecordFinalizer) && s.DeletionTimestamp.IsZero() {
		before := s.DeepCopy()
		controllerutil.AddFinalizer(s, RecordFinalizer)
		if err := r.Writer.Patch(ctx, s, client.MergeFrom(before)); err != nil {
			return nil, nil, fmt.Errorf("protecting the record Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return rec, data, nil
}

// digest is the hex SHA-256 of a record.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// recordCopy is what status.record keeps of a record.
func recordCopy(rec *incident.Record, data []byte) *meshv1alpha1.BreakGlassRecordCopy {
	cp := &meshv1alpha1.BreakGlassRecordCopy{SHA256: digest(data), Namespaces: slices.Clone(rec.Namespaces)}
	if len(data) <= maxStatusRecord {
		cp.Data = slices.Clone(data)
	}
	return cp
}

// writeRecord creates the record Secret, owned by bg and protected by
// RecordFinalizer, then copies it into status.record, both before any
// change: a record lost later is detected from the copy and the hold
// marks, never re-planned from the already detached cluster.
func (r *Reconciler) writeRecord(ctx context.Context, bg *meshv1alpha1.BreakGlass, rec *incident.Record) error {
	data, err := rec.Encode()
	if err != nil {
		return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%v", err)
	}
	immutable := true
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: secretName(bg), Namespace: r.OperatorNamespace,
			Labels:     ownership.Labels("BreakGlass", "", bg.Name),
			Finalizers: []string{RecordFinalizer},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "BreakGlass", Name: bg.Name, UID: bg.UID,
			}},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: &immutable,
		Data:      map[string][]byte{incident.RecordKey: data},
	}
	if err := r.Writer.Create(ctx, s); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("writing the record Secret %s/%s: the operator namespace %s does not exist (create it, or run the manager with --operator-namespace set to its own namespace); nothing was changed: %w",
				s.Namespace, s.Name, s.Namespace, err)
		}
		return fmt.Errorf("writing the record Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return r.saveCopy(ctx, bg, rec, data)
}

// saveCopy writes status.record (and the phase Engaging) at once, before
// anything is changed.
func (r *Reconciler) saveCopy(ctx context.Context, bg *meshv1alpha1.BreakGlass, rec *incident.Record, data []byte) error {
	before := bg.DeepCopy()
	bg.Status.Record = recordCopy(rec, data)
	bg.Status.Phase = meshv1alpha1.BreakGlassEngaging
	bg.Status.RecordSecretRef = &meshv1alpha1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: r.OperatorNamespace, Name: secretName(bg)}
	if err := r.Client.Status().Patch(ctx, bg, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("copying the record into status.record: %w", err)
	}
	return nil
}

// markRestored stores the phase Restored before the record is deleted.
// Its conflicts go with it (the status is complete when it says
// Restored).
func (r *Reconciler) markRestored(ctx context.Context, bg *meshv1alpha1.BreakGlass, out *result) error {
	if bg.Status.Phase == meshv1alpha1.BreakGlassRestored {
		return nil
	}
	before := bg.DeepCopy()
	bg.Status.Phase = meshv1alpha1.BreakGlassRestored
	bg.Status.Conflicts = conflicts(out.conflicts, true)
	if err := r.Client.Status().Patch(ctx, bg, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("recording the restore before deleting the record: %w", err)
	}
	return nil
}

// deleteRecord releases the record Secret's finalizer and deletes it.
func (r *Reconciler) deleteRecord(ctx context.Context, bg *meshv1alpha1.BreakGlass) error {
	s := &corev1.Secret{}
	key := client.ObjectKey{Namespace: r.OperatorNamespace, Name: secretName(bg)}
	if err := r.APIReader.Get(ctx, key, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	if controllerutil.ContainsFinalizer(s, RecordFinalizer) {
		before := s.DeepCopy()
		controllerutil.RemoveFinalizer(s, RecordFinalizer)
		if err := r.Writer.Patch(ctx, s, client.MergeFrom(before)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("releasing the record Secret: %w", err)
		}
	}
	if err := r.Writer.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the record Secret: %w", err)
	}
	return nil
}

// recordedScope returns the namespaces o recorded: from status.record, or
// from its record Secret when an operator stopped between writing the
// Secret and copying it into status.
func (r *Reconciler) recordedScope(ctx context.Context, o *meshv1alpha1.BreakGlass) ([]string, error) {
	if o.Status.Record != nil {
		return o.Status.Record.Namespaces, nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.OperatorNamespace, Name: secretName(o)}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the record of BreakGlass %s: %w", o.Name, err)
	}
	rec, err := incident.DecodeRecord(s.Data[incident.RecordKey])
	if err != nil || rec.UID != string(o.UID) {
		return nil, nil //nolint:nilerr // not a record of o: o holds nothing by it
	}
	return rec.Namespaces, nil
}

// heldNamespaces returns the namespaces carrying bg's coverage annotation.
func (r *Reconciler) heldNamespaces(ctx context.Context, bg *meshv1alpha1.BreakGlass) ([]string, error) {
	var list corev1.NamespaceList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range list.Items {
		if ns.Annotations[incident.NamespaceAnnotation] == bg.Name {
			out = append(out, ns.Name)
		}
	}
	return out, nil
}

// recordLost returns a Stalled RecordLost error when bg has no record but
// had one (status.record, or namespaces carrying its coverage annotation):
// the cluster is already changed and must never be recorded as the
// original. nil when bg never recorded anything.
func (r *Reconciler) recordLost(ctx context.Context, bg *meshv1alpha1.BreakGlass) error {
	held, err := r.heldNamespaces(ctx, bg)
	if err != nil {
		return err
	}
	if bg.Status.Record == nil && len(held) == 0 {
		return nil
	}
	nss := held
	if bg.Status.Record != nil {
		nss = bg.Status.Record.Namespaces
	}
	return outcome.Stalled(meshv1alpha1.RecordLostReason,
		"record Secret %s/%s was deleted; the prior state of %s (injection labels, webhooks%s) cannot be restored without it, and nothing is restored or re-recorded. %s",
		r.OperatorNamespace, secretName(bg), nsList(nss), policiesNote(bg), recovery(bg, r.OperatorNamespace, secretName(bg)))
}

func policiesNote(bg *meshv1alpha1.BreakGlass) string {
	if on(bg.Spec.Actions.RelaxPolicies) {
		return ", relaxed policies"
	}
	return ""
}

// recovery says how to recover from a lost record.
func recovery(bg *meshv1alpha1.BreakGlass, ns, name string) string {
	give := fmt.Sprintf("or, to give up restoring, annotate this BreakGlass %s=true and delete it (Meshplane then removes only its NotIn requirement from the webhooks and its %s annotations; the namespaces' injection labels stay as they are now)",
		AcceptRecordLossAnnotation, incident.NamespaceAnnotation)
	if cp := bg.Status.Record; cp != nil && len(cp.Data) > 0 {
		return fmt.Sprintf("status.record.data holds a copy: recreate it with `kubectl create secret generic %s -n %s --from-file=%s=<(kubectl get breakglass %s -o jsonpath='{.status.record.data}' | base64 -d)`, %s",
			name, ns, incident.RecordKey, bg.Name, give)
	}
	return fmt.Sprintf("Recreate Secret %s/%s (key %s, SHA-256 %s) from a backup, %s", ns, name, incident.RecordKey, sha(bg), give)
}

func sha(bg *meshv1alpha1.BreakGlass) string {
	if bg.Status.Record == nil {
		return "unknown"
	}
	return bg.Status.Record.SHA256
}

// nsList renders up to 20 namespace names.
func nsList(nss []string) string {
	if len(nss) == 0 {
		return "its namespaces"
	}
	s := slices.Clone(nss)
	slices.Sort(s)
	if len(s) > 20 {
		return fmt.Sprintf("namespaces %s and %d more (status.record.namespaces)", strings.Join(s[:20], ", "), len(s)-20)
	}
	return "namespaces " + strings.Join(s, ", ")
}

// releaseMarks, once the loss of the record is accepted, removes what
// Meshplane can identify as its own without the record: its NotIn
// requirement (exactly the recorded namespaces) from every webhook, and
// its coverage annotation from the namespaces.
func (r *Reconciler) releaseMarks(ctx context.Context, bg *meshv1alpha1.BreakGlass) error {
	held, err := r.heldNamespaces(ctx, bg)
	if err != nil {
		return err
	}
	for _, n := range held {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, incident.NamespaceAnnotation)
		if err := r.Writer.Patch(ctx, ns, client.RawPatch("application/merge-patch+json", []byte(patch))); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing %s from namespace %s: %w", incident.NamespaceAnnotation, n, err)
		}
	}
	if bg.Status.Record == nil || len(bg.Status.Record.Namespaces) == 0 {
		return nil
	}
	mut, val, err := r.webhooks(ctx)
	if err != nil {
		return err
	}
	for _, cfg := range append(mut, val...) {
		if err := r.removeRequirement(ctx, cfg, bg.Status.Record.Namespaces); err != nil {
			return err
		}
	}
	return nil
}

// removeRequirement removes the NotIn requirement listing exactly nss
// from every webhook of one configuration.
func (r *Reconciler) removeRequirement(ctx context.Context, cfg map[string]any, nss []string) error {
	hooks, _ := cfg["webhooks"].([]any)
	var changes []incident.Change
	ref := incident.ObjectRef{Group: "admissionregistration.k8s.io", Version: "v1", Kind: cfg["kind"].(string), Name: nameOfMap(cfg)}
	for _, h := range hooks {
		w, _ := h.(map[string]any)
		name, _ := w["name"].(string)
		changes = append(changes, incident.Change{Step: incident.StepWebhooks, Object: ref, Element: true,
			Path: []string{"webhooks", incident.ListKey(name), "namespaceSelector", "matchExpressions"},
			Set:  incident.ValueOf(incident.NotIn(nss))})
	}
	d, err := incident.Restore(cfg, changes)
	if err != nil || d.Modified == nil {
		return err
	}
	var obj client.Object = &admissionregistrationv1.MutatingWebhookConfiguration{}
	if ref.Kind == "ValidatingWebhookConfiguration" {
		obj = &admissionregistrationv1.ValidatingWebhookConfiguration{}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(d.Modified, obj); err != nil {
		return err
	}
	if err := r.Writer.Update(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing BreakGlass's NotIn requirement from %s: %w", ref, err)
	}
	return nil
}

func nameOfMap(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	n, _ := md["name"].(string)
	return n
}
