package hostile

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// An in-place Istio install writes istiod-default-validator for its
// istiod; the webhook is one per cluster, and one a user made is theirs.
func init() {
	registerOwn(Case{Category: "foreign", Kind: "MeshInstall", Mesh: Istio, Isolated: true,
		Name: "a user's istiod-default-validator is left as it is by an in-place install, before and after uninstall",
		Run: func(h *H) {
			h.StartManager()
			none := admissionregistrationv1.SideEffectClassNone
			theirs := &admissionregistrationv1.ValidatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: "istiod-default-validator", Labels: map[string]string{"istio.io/rev": "theirs"}},
				Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "validation.istio.io",
					ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
						Namespace: "their-istio", Name: "istiod-theirs", Path: ptr.To("/validate")}},
					FailurePolicy: ptr.To(admissionregistrationv1.Ignore), SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
			}
			h.Must(h.C.Create(h.Ctx, theirs))
			snap := h.Snapshot(theirs)
			cp := testenv.Namespace(h.T, h.C, nil)
			mi := installOf(Istio, "in-place", cp, &meshv1alpha1.ChartSource{Path: stageCharts(h, Istio)})
			mi.Spec.DeletionPolicy = meshv1alpha1.DeletionUninstall
			h.Create(mi)
			installed(h, mi)
			testenv.MarkAvailable(h.T, h.C, cp)
			h.Ready(mi)
			h.Eventually("a DefaultValidatorHeld Warning naming the holder", func() error {
				var list corev1.EventList
				if err := h.C.List(h.Ctx, &list); err != nil {
					return err
				}
				for _, e := range list.Items {
					if e.InvolvedObject.Name == mi.Name && e.Reason == "DefaultValidatorHeld" && e.Type == corev1.EventTypeWarning &&
						strings.Contains(e.Message, "istiod-default-validator is held by an object created outside Meshplane (revision theirs)") {
						return nil
					}
				}
				return fmt.Errorf("no DefaultValidatorHeld Warning on %s", mi.Name)
			})
			h.Unchanged(snap)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
		}})
}
