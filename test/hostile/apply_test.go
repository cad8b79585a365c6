package hostile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// Apply cases (internal/apply): every output of a generation is dry-run
// before the first write, so an output the API server or an admission
// webhook refuses writes nothing (refused creates leave nothing, refused
// updates leave the previous generation's outputs at their
// resourceVersions) and is Stalled OutputRejected with the webhook's
// message; an unreachable webhook is transient; a foreign field Meshplane
// set is recorded before it is written and restored on deletion, also
// after a failure; a prune never deletes an object relabelled for another
// owner; a drift fight is reported with the other field manager.

// webhookName is the refusing webhook; its message starts with
// refusalText.
const (
	webhookName = "refuse.hostile.meshplane.io"
	refusalText = "hostile webhook refuses"
)

var (
	webhookOnce sync.Once
	webhookURL  string
	webhookCA   []byte
	webhookErr  error
)

// refusingWebhook starts, once, an HTTPS admission webhook on 127.0.0.1
// that denies every request it gets, naming the object.
func refusingWebhook(h *H) (url string, ca []byte) {
	h.Helper()
	webhookOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			webhookErr = err
			return
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IsCA: true, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			webhookErr = err
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			webhookErr = err
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(refuse), ReadHeaderTimeout: 5 * time.Second,
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		webhookURL = "https://" + ln.Addr().String() + "/refuse"
		webhookCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	})
	h.Must(webhookErr)
	return webhookURL, webhookCA
}

// refuse denies the AdmissionReview it is sent.
func refuse(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	req := review.Request
	review.Response = &admissionv1.AdmissionResponse{UID: req.UID, Allowed: false, Result: &metav1.Status{
		Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: fmt.Sprintf("%s %s %s/%s (mesh policy)", refusalText, req.Kind.Kind, req.Namespace, req.Name)}}
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

// resource is one API resource a webhook intercepts.
type resource struct{ group, version, resource string }

var (
	routeOf = map[Mesh]resource{
		Istio:   {"networking.istio.io", "*", "virtualservices"},
		Linkerd: {"gateway.networking.k8s.io", "*", "httproutes"},
		Cilium:  {"gateway.networking.k8s.io", "*", "httproutes"},
	}
	routeKind = map[Mesh]string{Istio: "VirtualService", Linkerd: "HTTPRoute", Cilium: "HTTPRoute"}
	policyOf  = map[Mesh]resource{
		Istio:   {"security.istio.io", "*", "authorizationpolicies"},
		Linkerd: {"policy.linkerd.io", "*", "authorizationpolicies"},
		Cilium:  {"cilium.io", "*", "ciliumnetworkpolicies"},
	}
	policyKind  = map[Mesh]string{Istio: "AuthorizationPolicy", Linkerd: "AuthorizationPolicy", Cilium: "CiliumNetworkPolicy"}
	deployments = resource{"apps", "v1", "deployments"}
	namespaces  = resource{"", "v1", "namespaces"}
)

// webhook registers a ValidatingWebhookConfiguration for namespace ns that
// sends creates and updates of res (and ConfigMaps, the probe) to url —
// the refusing webhook, or a closed port for an outage — and waits until
// the API server calls it. It is removed when the case ends, or by the
// returned func.
func (h *H) webhook(ns, url string, ca []byte, res ...resource) func() {
	h.Helper()
	res = append(res, resource{"", "v1", "configmaps"})
	var rules []admissionregistrationv1.RuleWithOperations
	for _, r := range res {
		rules = append(rules, admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{r.group}, APIVersions: []string{r.version}, Resources: []string{r.resource}}})
	}
	none, fail := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Fail
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "hostile-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: webhookName, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
			Rules: rules, SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:    ptrTo[int32](5),
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
		}}}
	h.Create(vwc)
	remove := func() {
		_ = h.C.Delete(h.Ctx, vwc)
		h.Eventually("webhook of "+ns+" gone", func() error {
			if probe(h, ns) != nil {
				return fmt.Errorf("still called")
			}
			return nil
		})
	}
	h.Cleanup(func() { _ = h.C.Delete(h.Ctx, vwc) })
	h.Eventually("webhook of "+ns+" called", func() error {
		if probe(h, ns) == nil {
			return fmt.Errorf("not called yet")
		}
		return nil
	})
	return remove
}

// probe dry-run creates a ConfigMap in ns: an error once the webhook is
// called.
func probe(h *H, ns string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}}
	err := h.C.Create(h.Ctx, cm, client.DryRunAll)
	if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsInternalError(err) {
		return nil
	}
	return err
}

// refusing registers the refusing webhook for res in ns.
func (h *H) refusing(ns string, res ...resource) func() {
	h.Helper()
	url, ca := refusingWebhook(h)
	return h.webhook(ns, url, ca, res...)
}

// outage registers a webhook for res in ns whose server is down
// (connection refused on a loopback port).
func (h *H) outage(ns string, res ...resource) func() {
	h.Helper()
	_, ca := refusingWebhook(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	h.Must(err)
	addr := ln.Addr().String()
	h.Must(ln.Close())
	return h.webhook(ns, "https://"+addr+"/down", ca, res...)
}

// refusedMessage are the fragments of an OutputRejected message for an
// output of kind in ns.
func refusedMessage(kind, ns string) []string {
	return []string{kind + " " + ns + "/", "was refused by the API server",
		`admission webhook "` + webhookName + `" denied the request: ` + refusalText + " " + kind + " " + ns + "/",
		"nothing of this generation was applied and the previous outputs stay in force"}
}

// transient waits until obj is Ready=False with reason ApplyFailed and a
// message containing msg, and not Stalled.
func (h *H) transient(obj commonStatus, msg string) {
	h.Helper()
	h.Eventually(describe(obj)+" ApplyFailed", func() error {
		if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := status.Get(obj.GetCommonStatus(), meshv1alpha1.ReadyCondition)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ApplyFailedReason || !strings.Contains(c.Message, msg) {
			return fmt.Errorf("Ready is %+v", c)
		}
		if s := status.Get(obj.GetCommonStatus(), meshv1alpha1.StalledCondition); s != nil && s.Status == metav1.ConditionTrue {
			return fmt.Errorf("Stalled: %s", s.Message)
		}
		return nil
	})
}

// gone waits until obj no longer exists.
func (h *H) gone(obj client.Object) {
	h.Helper()
	h.Eventually(describe(obj)+" deleted", func() error {
		err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (finalizers %v, err %v)", obj.GetFinalizers(), err)
	})
}

func nsAnnotation(h *H, ns, key string) (string, bool) {
	h.Helper()
	o := &corev1.Namespace{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: ns}, o))
	v, ok := o.Annotations[key]
	return v, ok
}

const inboundPolicy = "config.linkerd.io/default-inbound-policy"

// linkerdNamespace is a Linkerd namespace, with a default inbound policy
// set by its owner when prior is not empty.
func (h *H) linkerdNamespace(prior string) string {
	h.Helper()
	ann := map[string]string{"linkerd.io/inject": "enabled"}
	if prior != "" {
		ann[inboundPolicy] = prior
	}
	return testenv.AnnotatedNamespace(h.T, h.C, nil, ann)
}

// weakenPolicy is the update of a ZeroTrustPolicy whose outputs a webhook
// refuses: mTLS weakened to Permissive and a new rule on port 9090.
func weakenPolicy(p *meshv1alpha1.ZeroTrustPolicy) func() {
	return func() {
		p.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
		p.Spec.Rules = append(p.Spec.Rules, meshv1alpha1.AllowRule{
			From: []meshv1alpha1.TrafficSource{{Namespaces: []string{"monitoring"}}},
			To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{9090}}}})
	}
}

func init() {
	for _, m := range Meshes {
		registerRefusedCases(m)
		registerOutageCases(m)
		registerDriftCase(m)
		registerCanaryRefusal(m)
	}
	registerForeignFieldCases()
	registerPruneCases()
}

func registerRefusedCases(m Mesh) {
	Register(Case{Category: "half-applied", Kind: "TrafficSplit", Mesh: m, Name: "route refused by a webhook on update",
		Run: func(h *H) {
			ts, ns := readySplit(h, m)
			h.refusing(ns, routeOf[m])
			before := h.Inventory(ns)
			h.Must(h.Update(ts, func() { ts.Spec.Backends[0].Weight, ts.Spec.Backends[1].Weight = 50, 50 }))
			h.Stalled(ts, meshv1alpha1.OutputRejectedReason, refusedMessage(routeKind[m], ns)...)
			h.Same(ns, before)
			if got := invNames(ts.Status.Inventory); len(got) == 0 {
				h.Fatalf("inventory of the previous generation lost: %v", ts.Status.Inventory)
			}
			h.Control("TrafficSplit", m)
		}})
	Register(Case{Category: "refused-create", Kind: "TrafficSplit", Mesh: m, Name: "route refused by a webhook",
		Run: func(h *H) {
			ns := h.Namespace(m)
			for _, s := range []string{"web", "web-v1", "web-v2"} {
				h.Service(ns, s)
			}
			h.refusing(ns, routeOf[m])
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", m)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.OutputRejectedReason, refusedMessage(routeKind[m], ns)...)
			h.Same(ns, before)
			if len(ts.Status.Inventory) != 0 {
				h.Fatalf("inventory %v after a refused create", ts.Status.Inventory)
			}
		}})
	Register(Case{Category: "half-applied", Kind: "ZeroTrustPolicy", Mesh: m, Name: "policy refused by a webhook on update keeps mTLS",
		Run: func(h *H) {
			ns := h.Namespace(m)
			p := GoodZeroTrustPolicy(ns, "policy", m)
			h.Create(p)
			h.Ready(p)
			nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			h.refusing(ns, policyOf[m])
			before, snap := h.Inventory(ns), h.Snapshot(nsObj)
			h.Must(h.Update(p, weakenPolicy(p)))
			h.Stalled(p, meshv1alpha1.OutputRejectedReason, refusedMessage(policyKind[m], ns)...)
			// The PeerAuthentication (Istio) and the namespace's default
			// policy (Linkerd) stay as they were: nothing weakened.
			h.Same(ns, before)
			h.Unchanged(snap)
			h.Control("ZeroTrustPolicy", m)
		}})
	Register(Case{Category: "refused-create", Kind: "ZeroTrustPolicy", Mesh: m, Name: "policy refused by a webhook",
		Run: func(h *H) {
			ns := h.Namespace(m)
			nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			h.refusing(ns, policyOf[m])
			before, snap := h.Inventory(ns), h.Snapshot(nsObj)
			p := GoodZeroTrustPolicy(ns, "policy", m)
			h.Create(p)
			h.Stalled(p, meshv1alpha1.OutputRejectedReason, refusedMessage(policyKind[m], ns)...)
			h.Same(ns, before)
			h.Unchanged(snap)
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
			h.Unchanged(snap)
		}})
}

func registerOutageCases(m Mesh) {
	Register(Case{Category: "transient", Kind: "TrafficSplit", Mesh: m, Name: "route webhook unreachable then back",
		Run: func(h *H) {
			ts, ns := readySplit(h, m)
			restore := h.outage(ns, routeOf[m])
			before := h.Inventory(ns)
			h.Must(h.Update(ts, func() { ts.Spec.Backends[0].Weight, ts.Spec.Backends[1].Weight = 50, 50 }))
			h.transient(ts, "failed calling webhook")
			h.Same(ns, before)
			restore()
			h.Ready(ts)
			if ts.Status.Weights != "web-v1=50,web-v2=50" {
				h.Fatalf("weights %q after the webhook came back", ts.Status.Weights)
			}
		}})
	Register(Case{Category: "transient", Kind: "ZeroTrustPolicy", Mesh: m, Name: "policy webhook unreachable then back",
		Run: func(h *H) {
			ns := h.Namespace(m)
			p := GoodZeroTrustPolicy(ns, "policy", m)
			h.Create(p)
			h.Ready(p)
			restore := h.outage(ns, policyOf[m])
			before := h.Inventory(ns)
			h.Must(h.Update(p, weakenPolicy(p)))
			h.transient(p, "failed calling webhook")
			h.Same(ns, before)
			restore()
			h.Ready(p)
		}})
}

// registerDriftCase: another field manager keeps rewriting a weight of the
// route; Meshplane repairs it, then reports the fight and backs off.
func registerDriftCase(m Mesh) {
	Register(Case{Category: "drift", Kind: "TrafficSplit", Mesh: m, Name: "route weight rewritten by another manager",
		Run: func(h *H) {
			ts, ns := readySplit(h, m)
			ref := findRef(h, ts.Status.Inventory, routeKind[m])
			gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
			read := func() *unstructured.Unstructured {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(gvk)
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, u))
				return u
			}
			want := weightsOf(read().Object["spec"])
			rewrite := func() {
				h.Must(h.retryUpdate(read, func(u *unstructured.Unstructured) { bumpWeight(u.Object["spec"]) }, "gitops-sync"))
			}
			for i := range 3 {
				rewrite()
				h.Eventually(fmt.Sprintf("repair %d", i+1), func() error {
					if got := weightsOf(read().Object["spec"]); got != want {
						return fmt.Errorf("weights %s, want %s", got, want)
					}
					return nil
				})
			}
			c := h.Condition(ts, meshv1alpha1.DriftDetectedCondition, metav1.ConditionTrue, meshv1alpha1.DriftFightReason,
				routeKind[m]+" "+ns+"/"+ref.Name, "field manager gitops-sync", "field spec.")
			h.Logf("DriftDetected: %s", c.Message)
			// Backed off: the next rewrite stays for a while.
			rewrite()
			h.Consistently(3*time.Second, "back-off", func() error {
				if got := weightsOf(read().Object["spec"]); got == want {
					return fmt.Errorf("repaired at once during the back-off")
				}
				return nil
			})
			h.Eventually("DriftFight Event", func() error { return hasEvent(h, ns, ts.Name, meshv1alpha1.DriftFightReason, "gitops-sync") })
		}})
}

// retryUpdate updates the object read returns after mutate, as field
// manager manager, retrying conflicts.
func (h *H) retryUpdate(read func() *unstructured.Unstructured, mutate func(*unstructured.Unstructured), manager string) error {
	var err error
	for range 10 {
		u := read()
		mutate(u)
		if err = h.C.Update(h.Ctx, u, client.FieldOwner(manager)); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

// weightsOf renders every "weight" under v.
func weightsOf(v any) string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, sub := range x {
				if k == "weight" {
					out = append(out, fmt.Sprint(sub))
				}
				walk(sub)
			}
		case []any:
			for _, sub := range x {
				walk(sub)
			}
		}
	}
	walk(v)
	return strings.Join(out, ",")
}

// bumpWeight lowers the first weight over 1 under v by one.
func bumpWeight(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if w, ok := x["weight"].(int64); ok && w > 1 {
			x["weight"] = w - 1
			return true
		}
		for _, sub := range x {
			if bumpWeight(sub) {
				return true
			}
		}
	case []any:
		for _, sub := range x {
			if bumpWeight(sub) {
				return true
			}
		}
	}
	return false
}

// hasEvent finds an Event about object name in ns with reason and a note
// containing text.
func hasEvent(h *H, ns, name, reason, text string) error {
	var list corev1.EventList
	if err := h.C.List(h.Ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason && strings.Contains(e.Message, text) {
			return nil
		}
	}
	return fmt.Errorf("no %s Event about %s among %d", reason, name, len(list.Items))
}

func findRef(h *H, inv []meshv1alpha1.ObjectReference, kind string) meshv1alpha1.ObjectReference {
	h.Helper()
	for _, r := range inv {
		if r.Kind == kind {
			return r
		}
	}
	h.Fatalf("no %s in inventory %v", kind, inv)
	return meshv1alpha1.ObjectReference{}
}

// invNames is a status inventory's refs as strings (for messages).
func invNames(inv []meshv1alpha1.ObjectReference) []string {
	out := make([]string, 0, len(inv))
	for _, r := range inv {
		out = append(out, r.Kind+"/"+r.Name)
	}
	return out
}

// registerCanaryRefusal: the primary Deployment is refused: nothing is
// created (no Service, no primary), the target is not scaled, and the
// Canary can be deleted.
func registerCanaryRefusal(m Mesh) {
	Register(Case{Category: "refused-create", Kind: "Canary", Mesh: m, Name: "primary Deployment refused by a webhook",
		Run: func(h *H) {
			ns := h.Namespace(m)
			target := targetDeployment(ns, "web")
			h.Create(target)
			h.refusing(ns, deployments)
			before, snap := h.Inventory(ns), h.Snapshot(target)
			cn := GoodCanary(ns, "web", m)
			h.Create(cn)
			h.Stalled(cn, meshv1alpha1.OutputRejectedReason, refusedMessage("Deployment", ns)...)
			h.Same(ns, before)
			h.Unchanged(snap)
			primary := &appsv1.Deployment{}
			if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, primary); !apierrors.IsNotFound(err) {
				h.Fatalf("primary Deployment exists after its refusal (err %v)", err)
			}
			h.Must(h.C.Delete(h.Ctx, cn))
			h.gone(cn)
			h.Unchanged(snap)
		}})
}

func targetDeployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}}}}}
}

// registerForeignFieldCases: Linkerd's namespace-wide default inbound
// policy, a field of a namespace Meshplane did not create.
func registerForeignFieldCases() {
	Register(Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "deletion restores the previous default inbound policy",
		Run: func(h *H) {
			ns := h.linkerdNamespace("all-authenticated")
			p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
			h.Create(p)
			h.Ready(p)
			if v, _ := nsAnnotation(h, ns, inboundPolicy); v != "deny" {
				h.Fatalf("default inbound policy %q while the policy is Ready, want deny", v)
			}
			if len(p.Status.SharedFields) != 1 || p.Status.SharedFields[0].Previous == nil || *p.Status.SharedFields[0].Previous != "all-authenticated" {
				h.Fatalf("sharedFields %+v do not record the previous value", p.Status.SharedFields)
			}
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
			if v, ok := nsAnnotation(h, ns, inboundPolicy); v != "all-authenticated" {
				h.Fatalf("default inbound policy %q (set %v) after deletion, want the previous all-authenticated", v, ok)
			}
		}})
	Register(Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "deletion after a refused update removes deny",
		Run: func(h *H) {
			ns := h.linkerdNamespace("")
			p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
			h.Create(p)
			h.Ready(p)
			h.refusing(ns, policyOf[Linkerd])
			h.Must(h.Update(p, weakenPolicy(p)))
			h.Stalled(p, meshv1alpha1.OutputRejectedReason, refusedMessage("AuthorizationPolicy", ns)...)
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
			if v, ok := nsAnnotation(h, ns, inboundPolicy); ok {
				h.Fatalf("default inbound policy %q left on the namespace after deletion", v)
			}
		}})
	Register(Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "refused create never touches an owner's default",
		Run: func(h *H) {
			ns := h.linkerdNamespace("audit")
			nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			h.refusing(ns, policyOf[Linkerd])
			snap := h.Snapshot(nsObj)
			p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
			h.Create(p)
			h.Stalled(p, meshv1alpha1.OutputRejectedReason, refusedMessage("AuthorizationPolicy", ns)...)
			h.Unchanged(snap)
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
			h.Unchanged(snap)
		}})
	Register(Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "namespace annotation refused writes nothing",
		Run: func(h *H) {
			ns := h.linkerdNamespace("")
			h.refusing(ns, namespaces)
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
			h.Create(p)
			h.Stalled(p, meshv1alpha1.OutputRejectedReason, "Namespace "+ns+" was refused by the API server", refusalText+" Namespace ")
			h.Same(ns, before)
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
		}})
	Register(Case{Category: "foreign", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "refused update then deletion leaves the namespace as it was",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			snap := h.Snapshot(nsObj)
			p := GoodZeroTrustPolicy(ns, "policy", Istio)
			h.Create(p)
			h.Ready(p)
			h.refusing(ns, policyOf[Istio])
			h.Must(h.Update(p, weakenPolicy(p)))
			h.Stalled(p, meshv1alpha1.OutputRejectedReason, refusedMessage("AuthorizationPolicy", ns)...)
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
			h.Unchanged(snap)
		}})
}

// registerPruneCases: an output relabelled for another owner is never
// pruned.
func registerPruneCases() {
	for _, tc := range []struct {
		m      Mesh
		kind   string
		update func(p *meshv1alpha1.ZeroTrustPolicy)
	}{
		{Istio, "AuthorizationPolicy", func(p *meshv1alpha1.ZeroTrustPolicy) {
			p.Spec.DefaultAction, p.Spec.Rules = meshv1alpha1.ActionAllow, nil
		}},
		{Linkerd, "Server", func(p *meshv1alpha1.ZeroTrustPolicy) { p.Spec.Rules[0].To[0].Ports = []int32{9090} }},
	} {
		Register(Case{Category: "prune", Kind: "ZeroTrustPolicy", Mesh: tc.m, Name: "output relabelled for another owner is not pruned",
			Run: func(h *H) {
				ns := h.Namespace(tc.m)
				p := GoodZeroTrustPolicy(ns, "policy", tc.m)
				h.Create(p)
				h.Ready(p)
				ref := findRef(h, p.Status.Inventory, tc.kind)
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind))
				read := func() *unstructured.Unstructured {
					h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, u))
					return u
				}
				other := ownership.OwnerValue("ZeroTrustPolicy", ns, "someone-else")
				h.Must(h.retryUpdate(read, func(u *unstructured.Unstructured) {
					l := u.GetLabels()
					l[ownership.OwnerLabel] = other
					u.SetLabels(l)
				}, "kubectl-label"))
				h.Must(h.Update(p, func() { tc.update(p) }))
				h.Ready(p)
				got := read()
				if got.GetLabels()[ownership.OwnerLabel] != other {
					h.Fatalf("%s %s relabelled for %s now has owner %q", ref.Kind, ref.Name, other, got.GetLabels()[ownership.OwnerLabel])
				}
				for _, r := range p.Status.Inventory {
					if r == ref {
						h.Fatalf("inventory still lists %s after the update", ref.Name)
					}
				}
			}})
	}
}
