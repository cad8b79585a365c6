package install

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/meshplane/internal/mesh/istio"
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
			[]metav1.LabelSelectorRequirement{in(istio.RevLabel, tag), absent(istio.InjectionLabel)},
			[]metav1.LabelSelectorRequirement{notIn(injectLabel, "false")}),
		mk("rev.object.sidecar-injector.istio.io",
			[]metav1.LabelSelectorRequirement{absent(istio.RevLabel), absent(istio.InjectionLabel)},
			[]metav1.LabelSelectorRequirement{notIn(injectLabel, "false"), in(istio.RevLabel, tag)}),
	}
	if tag == "default" {
		hooks = append(hooks,
			mk("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{in(istio.InjectionLabel, "enabled")},
				[]metav1.LabelSelectorRequirement{notIn(injectLabel, "false")}),
			mk("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{absent(istio.InjectionLabel), absent(istio.RevLabel)},
				[]metav1.LabelSelectorRequirement{in(injectLabel, "true"), absent(istio.RevLabel)}))
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   istio.TagWebhookName(tag),
			Labels: map[string]string{TagLabel: tag, istio.RevLabel: revision, "app": "sidecar-injector"},
		},
		Webhooks: hooks,
	}, nil
}
