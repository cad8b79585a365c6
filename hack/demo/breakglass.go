package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// outageNamespace is the meshed namespace the break-glass demo uses.
const outageNamespace = "checkout"

// demoBreakGlass shows an injector outage, a BreakGlass that lets pods
// start, and the exact restore: the istiod Service of a second injector
// (istio-sidecar-injector-checkout, fail-closed) has nothing behind it, as
// when istiod is down, so no pod can be created in the namespace it serves.
func demoBreakGlass(ctx context.Context, c client.Client) error {
	step("break-glass: istiod for namespace %s is down (its fail-closed injector webhook calls a Service with nothing behind it)", outageNamespace)
	if err := breakGlassOutage(ctx, c); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	if n, err := pods(ctx, c, outageNamespace); err != nil {
		return err
	} else if n != 0 {
		return fmt.Errorf("%d pod(s) were created in %s with the injector down", n, outageNamespace)
	}
	if msg := failedCreate(ctx, c, outageNamespace); msg != "" {
		step("Deployment %s/web has no pods: %s", outageNamespace, msg)
	} else {
		step("Deployment %s/web has no pods: the injector refuses every pod", outageNamespace)
	}
	before, err := injectionState(ctx, c, outageNamespace)
	if err != nil {
		return err
	}

	bg := &meshv1alpha1.BreakGlass{
		TypeMeta:   metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "BreakGlass"},
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-down"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "INC-1234: istiod unreachable, checkout cannot scale",
			Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio},
			Scope:  &meshv1alpha1.BreakGlassScope{Namespaces: []string{outageNamespace}}},
	}
	step("kubectl apply a BreakGlass (target Istio, scope %s)", outageNamespace)
	start := time.Now()
	if err := ssa(ctx, c, bg); err != nil {
		return err
	}
	if err := waitFor(ctx, func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(bg), bg); err != nil {
			return false, err
		}
		return bg.Status.Phase == meshv1alpha1.BreakGlassEngaged, nil
	}); err != nil {
		return fmt.Errorf("BreakGlass not Engaged: %w", err)
	}
	step("BreakGlass Engaged in %s: %d namespace(s), %d webhook configuration(s) touched; record in Secret %s/%s",
		time.Since(start).Round(10*time.Millisecond), bg.Status.Touched.Namespaces, bg.Status.Touched.Webhooks,
		bg.Status.RecordSecretRef.Namespace, bg.Status.RecordSecretRef.Name)
	if err := waitFor(ctx, func() (bool, error) {
		n, err := pods(ctx, c, outageNamespace)
		return n >= 2, err
	}); err != nil {
		return fmt.Errorf("pods did not start after the BreakGlass: %w", err)
	}
	step("pods start in %s without sidecars (%s after the BreakGlass)", outageNamespace, time.Since(start).Round(10*time.Millisecond))

	step("kubectl delete breakglass istiod-down: restore exactly what was recorded")
	if err := c.Delete(ctx, bg); err != nil {
		return err
	}
	if err := waitFor(ctx, func() (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(bg), bg)
		return err != nil, client.IgnoreNotFound(err)
	}); err != nil {
		return fmt.Errorf("BreakGlass not restored: %w", err)
	}
	after, err := injectionState(ctx, c, outageNamespace)
	if err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("the restore is not exact:\nbefore %s\nafter  %s", before, after)
	}
	step("restored: namespace %s labels/annotations and every injector webhook are byte-for-byte as before (%d bytes compared)", outageNamespace, len(before))
	step("istiod for %s recovers: the outage's webhook is removed (kubectl get breakglass; kubectl get events -n %s)", outageNamespace, outageNamespace)
	return c.Delete(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + outageNamespace}})
}

// breakGlassOutage creates the namespace, its Deployment and the dead
// injector.
func breakGlassOutage(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: outageNamespace, Labels: map[string]string{"istio-injection": "enabled"}}}
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + outageNamespace, Namespace: "istio-system"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)}}}}
	fail, none, path := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, "/inject"
	hook := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + outageNamespace},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "namespace.sidecar-injector.istio.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "istio-system", Name: svc.Name, Path: &path}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}},
		}},
	}
	// The manager keeps its records in its namespace (--operator-namespace).
	opns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "meshplane-system"}}
	for _, o := range []client.Object{opns, ns, svc, hook} {
		if err := ssa(ctx, c, o); err != nil {
			return fmt.Errorf("applying %s: %w", o.GetName(), err)
		}
	}
	return demoApp(ctx, c, outageNamespace)
}

func pods(ctx context.Context, c client.Client, ns string) (int, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// failedCreate returns the ReplicaSet controller's last FailedCreate
// message in ns, shortened.
func failedCreate(ctx context.Context, c client.Client, ns string) string {
	var rs appsv1.ReplicaSetList
	if err := c.List(ctx, &rs, client.InNamespace(ns)); err != nil || len(rs.Items) == 0 {
		return ""
	}
	for _, cond := range rs.Items[0].Status.Conditions {
		if cond.Type == appsv1.ReplicaSetReplicaFailure {
			msg := cond.Message
			if i := strings.Index(msg, "failed calling webhook"); i >= 0 {
				msg = msg[i:]
			}
			if len(msg) > 140 {
				msg = msg[:140] + "..."
			}
			return msg
		}
	}
	return ""
}

// injectionState renders the namespace's labels and annotations and every
// mutating webhook configuration's webhooks.
func injectionState(ctx context.Context, c client.Client, ns string) (string, error) {
	var n corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		return "", err
	}
	var list admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &list); err != nil {
		return "", err
	}
	out := map[string]any{"labels": n.Labels, "annotations": n.Annotations}
	for _, w := range list.Items {
		out[w.Name] = w.Webhooks
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func waitFor(ctx context.Context, ok func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		done, err := ok()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
