package istio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// Istio's selector labels.
const (
	injectLabel = "sidecar.istio.io/inject"
	// TagLabel marks a revision-tag webhook with its tag.
	TagLabel = "istio.io/tag"
)

// TagWebhook derives the MutatingWebhookConfiguration of a revision tag from
// the injector of the revision it points at, as `istioctl tag set` does:
// the same client config and rules, with selectors matching namespaces and
// pods labelled istio.io/rev=<tag>. The default tag also matches
// istio-injection=enabled namespaces and sidecar.istio.io/inject=true pods.
// The result carries no ownership labels; the caller adds them.
func TagWebhook(tag, revision string, injector *admissionregistrationv1.MutatingWebhookConfiguration) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	if len(injector.Webhooks) == 0 {
		return nil, fmt.Errorf("injector %s of revision %s has no webhooks", injector.Name, revision)
	}
	tmpl := injector.Webhooks[0]
	mk := func(name string, ns, obj []metav1.LabelSelectorRequirement) admissionregistrationv1.MutatingWebhook {
		w := *tmpl.DeepCopy()
		w.Name = name
		w.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: ns}
		w.ObjectSelector = &metav1.LabelSelector{MatchExpressions: obj}
		return w
	}
	in := func(k string, v ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpIn, Values: v}
	}
	notIn := func(k string, v ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpNotIn, Values: v}
	}
	absent := func(k string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpDoesNotExist}
	}
	hooks := []admissionregistrationv1.MutatingWebhook{
		mk("rev.namespace.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{in(RevLabel, tag), absent(InjectionLabel)},
			[]metav1.LabelSelectorRequirement{notIn(injectLabel, "false")}),
		mk("rev.object.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{absent(RevLabel), absent(InjectionLabel)},
			[]metav1.LabelSelectorRequirement{notIn(injectLabel, "false"), in(RevLabel, tag)}),
	}
	if tag == "default" {
		hooks = append(hooks,
			mk("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{in(InjectionLabel, "enabled")},
				[]metav1.LabelSelectorRequirement{notIn(injectLabel, "false")}),
			mk("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{absent(InjectionLabel), absent(RevLabel)},
				[]metav1.LabelSelectorRequirement{in(injectLabel, "true"), absent(RevLabel)}))
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   TagWebhookName(tag),
			Labels: map[string]string{TagLabel: tag, RevLabel: revision, "app": "sidecar-injector"},
		},
		Webhooks: hooks,
	}, nil
}

// DefaultValidatorName is the ValidatingWebhookConfiguration of the
// default revision: it validates the Istio objects that carry no
// istio.io/rev label.
const DefaultValidatorName = "istiod-default-validator"

// ValidatorWebhookName is the ValidatingWebhookConfiguration istiod's
// chart renders for a revision: istio-validator, plus -<revision>, plus
// -<istio namespace>.
func ValidatorWebhookName(revision, namespace string) string {
	n := "istio-validator"
	if revision != "" {
		n += "-" + revision
	}
	return n + "-" + namespace
}

// DefaultValidator derives istiod-default-validator from the validator of
// the revision the default tag points at, as `istioctl tag set default`
// does: the same client config, rules and failure policy, without the
// object selector, so that it validates unlabelled Istio objects. The
// result carries no ownership labels; the caller adds them.
func DefaultValidator(revision string, validator *admissionregistrationv1.ValidatingWebhookConfiguration) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	if len(validator.Webhooks) == 0 {
		return nil, fmt.Errorf("validator %s of revision %s has no webhooks", validator.Name, revision)
	}
	w := *validator.Webhooks[0].DeepCopy()
	w.Name = "validation.istio.io"
	w.ObjectSelector = nil
	w.NamespaceSelector = nil
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   DefaultValidatorName,
			Labels: map[string]string{TagLabel: "default", RevLabel: revision, "app": "istiod", "istio": "istiod"},
		},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{w},
	}, nil
}

// EnsureTag points a revision tag at revision with one server-side apply
// of its webhook configuration (internal/apply), derived from the
// revision's injector in namespace; nothing is written when the tag
// already points there. The default tag also carries the default
// validator (DefaultValidator), derived from the revision's validator,
// when the revision has one. It waits for the injector, and a tag webhook
// Meshplane did not create for w.Owner is a Conflict unless w.Adopt. The
// MeshInstall controller (default tag) and the MeshRevision controller
// (spec.tags) both use it.
func EnsureTag(ctx context.Context, w mesh.TagWriter, tag, revision, namespace string) (apply.Result, error) {
	var injector admissionregistrationv1.MutatingWebhookConfiguration
	name := InjectorWebhookName(revision, namespace)
	if err := w.Reader.Get(ctx, client.ObjectKey{Name: name}, &injector); err != nil {
		if apierrors.IsNotFound(err) {
			return apply.Result{}, outcome.Wait(meshv1alpha1.ProgressingReason, 2*time.Second, "waiting for the injector %s of revision %s", name, revision)
		}
		return apply.Result{}, err
	}
	want, err := TagWebhook(tag, revision, &injector)
	if err != nil {
		return apply.Result{}, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%v", err)
	}
	res, err := w.Applier.ApplyDetached(ctx, w.Owner, []client.Object{want}, w.Adopt)
	var conflict *apply.ConflictError
	if errors.As(err, &conflict) {
		return res, outcome.Stalled(meshv1alpha1.ConflictReason, "revision tag webhook %s exists and was not created by Meshplane for %s %s; "+
			"remove it (istioctl tag remove %s), or set spec.adopt on the MeshInstall to take it over", want.Name, w.Owner.Kind, w.Owner.Object.GetName(), tag)
	}
	if err != nil || tag != RevisionLabelValue {
		return res, err
	}
	vres, err := EnsureDefaultValidator(ctx, w, revision, namespace)
	res.Changes = append(res.Changes, vres.Changes...)
	return res, err
}

// EnsureDefaultValidator writes istiod-default-validator, derived from the
// validator of revision in namespace (DefaultValidator), so that istiod
// validates the Istio objects that carry no istio.io/rev label. The
// default tag carries it (EnsureTag); an in-place install, whose base
// release renders none, writes it for its only istiod. The webhook is one
// per cluster: when another owner holds it (another MeshInstall, a Helm
// release, a user), nothing is written and w.Held is told who, since
// unlabelled objects are validated already. Nothing is written when the
// revision renders no validator (global.configValidation false).
func EnsureDefaultValidator(ctx context.Context, w mesh.TagWriter, revision, namespace string) (apply.Result, error) {
	v, err := defaultValidatorFor(ctx, w.Reader, revision, namespace)
	if err != nil || v == nil {
		return apply.Result{}, err
	}
	res, err := w.Applier.ApplyDetached(ctx, w.Owner, []client.Object{v}, w.Adopt)
	var conflict *apply.ConflictError
	if !errors.As(err, &conflict) {
		return res, err
	}
	holder, err := holderOf(ctx, w.Reader, v.Name)
	if err == nil && w.Held != nil {
		w.Held(v.Name, holder)
	}
	return res, err
}

// holderOf describes who holds the ValidatingWebhookConfiguration name: a
// Meshplane owner, a Helm release, or neither.
func holderOf(ctx context.Context, r client.Reader, name string) (string, error) {
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.Get(ctx, client.ObjectKey{Name: name}, &v); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	if o := v.Labels[ownership.OwnerLabel]; o != "" {
		return "Meshplane (owner label " + o + ")", nil
	}
	if rel := v.Annotations["meta.helm.sh/release-name"]; rel != "" {
		return "Helm release " + v.Annotations["meta.helm.sh/release-namespace"] + "/" + rel, nil
	}
	return "an object created outside Meshplane (revision " + v.Labels[RevLabel] + ")", nil
}

// defaultValidatorFor derives the default validator of revision from its
// validator in namespace; nil when the revision renders none (Istio's
// global.configValidation: false).
func defaultValidatorFor(ctx context.Context, r client.Reader, revision, namespace string) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	var validator admissionregistrationv1.ValidatingWebhookConfiguration
	if err := r.Get(ctx, client.ObjectKey{Name: ValidatorWebhookName(revision, namespace)}, &validator); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	v, err := DefaultValidator(revision, &validator)
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%v", err)
	}
	return v, nil
}

// PruneTags deletes w.Owner's tag webhooks whose tag is not in keep
// (internal/apply's Prune: only webhooks still carrying the owner's label).
func PruneTags(ctx context.Context, w mesh.TagWriter, keep []string) (apply.ChangeSet, error) {
	var hooks admissionregistrationv1.MutatingWebhookConfigurationList
	owner := ownership.OwnerValue(w.Owner.Kind, w.Owner.Object.GetNamespace(), w.Owner.Object.GetName())
	if err := w.Reader.List(ctx, &hooks, client.MatchingLabels{ownership.OwnerLabel: owner}, client.HasLabels{TagLabel}); err != nil {
		return nil, err
	}
	var validators admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := w.Reader.List(ctx, &validators, client.MatchingLabels{ownership.OwnerLabel: owner}, client.HasLabels{TagLabel}); err != nil {
		return nil, err
	}
	var stale []meshv1alpha1.ObjectReference
	for _, h := range hooks.Items {
		if !slices.Contains(keep, h.Labels[TagLabel]) {
			stale = append(stale, meshv1alpha1.ObjectReference{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(),
				Kind: "MutatingWebhookConfiguration", Name: h.Name})
		}
	}
	for _, v := range validators.Items {
		if !slices.Contains(keep, v.Labels[TagLabel]) {
			stale = append(stale, meshv1alpha1.ObjectReference{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(),
				Kind: "ValidatingWebhookConfiguration", Name: v.Name})
		}
	}
	return w.Applier.Prune(ctx, w.Owner, stale)
}

// TagsOf lists the revision tags of every tag webhook: tag to revision.
func TagsOf(ctx context.Context, r client.Reader) (map[string]string, error) {
	var hooks admissionregistrationv1.MutatingWebhookConfigurationList
	if err := r.List(ctx, &hooks, client.HasLabels{TagLabel}); err != nil {
		return nil, err
	}
	tags := make(map[string]string, len(hooks.Items))
	for _, h := range hooks.Items {
		tags[h.Labels[TagLabel]] = h.Labels[RevLabel]
	}
	return tags, nil
}
