package meshinstall_test

import (
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestIstioDefaultValidatorInPlace: an in-place install (whose base release
// renders no default validator) writes istiod-default-validator for its
// istiod, so unlabelled Istio objects are validated; it is repaired when
// deleted; a second in-place install leaves the cluster's one validator to
// its holder, says so in a Warning event and is Ready; when the holder is
// uninstalled, the second install takes it over.
func TestIstioDefaultValidatorInPlace(t *testing.T) {
	cfg := env.Cfg(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client
	install := func(name string) (*meshv1alpha1.MeshInstall, string) {
		cp := testenv.Namespace(t, c, nil)
		mi := &meshv1alpha1.MeshInstall{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: cp,
				Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, DeletionPolicy: meshv1alpha1.DeletionUninstall},
		}
		testenv.Must(t, c.Create(ctx, mi))
		removeAtEnd(t, c, mi.Name)
		waitCondition(t, c, name, meshv1alpha1.InstalledCondition, metav1.ConditionTrue, "")
		testenv.MarkAvailable(t, c, cp)
		waitCondition(t, c, name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
		return mi, cp
	}
	validator := func(cp string) error {
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: "istiod-default-validator"}, &v); err != nil {
			return err
		}
		if len(v.Webhooks) != 1 {
			return testenv.Errorf("webhooks %+v", v.Webhooks)
		}
		w := v.Webhooks[0]
		if s := w.ClientConfig.Service; s == nil || s.Name != "istiod" || s.Namespace != cp {
			return testenv.Errorf("client config %+v, want istiod in %s", w.ClientConfig, cp)
		}
		if w.ObjectSelector != nil && len(w.ObjectSelector.MatchExpressions)+len(w.ObjectSelector.MatchLabels) > 0 {
			return testenv.Errorf("object selector %+v: unlabelled objects would not be validated", w.ObjectSelector)
		}
		return nil
	}

	first, cp1 := install("istio-inplace-a")
	testenv.Eventually(t, 30*time.Second, "validator of the in-place istiod", func() error { return validator(cp1) })
	t.Run("deleted, it is written again", func(t *testing.T) {
		testenv.Must(t, c.Delete(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istiod-default-validator"}}))
		testenv.Eventually(t, 30*time.Second, "validator repaired", func() error { return validator(cp1) })
	})
	t.Run("a second in-place install leaves it to its holder", func(t *testing.T) {
		second, _ := install("istio-inplace-b")
		testenv.Eventually(t, 30*time.Second, "DefaultValidatorHeld event", func() error {
			var list corev1.EventList
			testenv.Must(t, c.List(ctx, &list))
			for _, e := range list.Items {
				if e.InvolvedObject.Name == second.Name && e.Reason == "DefaultValidatorHeld" {
					if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, first.Name) {
						return testenv.Errorf("event %s %q does not name the holder %s", e.Type, e.Message, first.Name)
					}
					return nil
				}
			}
			return testenv.Errorf("no DefaultValidatorHeld event on %s: %s", second.Name, eventReasons(t, c, second.Name))
		})
		testenv.Must(t, validator(cp1))
	})
	t.Run("the holder uninstalled, the other install takes it over", func(t *testing.T) {
		testenv.Must(t, c.Delete(ctx, first))
		testenv.Eventually(t, 60*time.Second, "first install gone", func() error {
			if err := c.Get(ctx, client.ObjectKey{Name: first.Name}, &meshv1alpha1.MeshInstall{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
		second := getMI(t, c, "istio-inplace-b")
		testenv.Eventually(t, 30*time.Second, "validator of the second install", func() error { return validator(second.Status.Namespace) })
	})
}

// removeAtEnd deletes the MeshInstall name when the test ends and waits for
// it to be gone (its finalizer run by the test's manager, still running),
// so that the next test in the package's API server starts without it.
func removeAtEnd(t *testing.T, c client.Client, name string) {
	t.Helper()
	t.Cleanup(func() {
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Delete(ctx, mi); apierrors.IsNotFound(err) {
			return
		}
		testenv.Eventually(t, 90*time.Second, "MeshInstall "+name+" deleted at the end of the test", func() error {
			if err := c.Get(ctx, client.ObjectKey{Name: name}, mi); !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
	})
}
