package hostile

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/trust"
	"github.com/meshplane/meshplane/test/harness"
)

// BreakGlass and MeshFederation-root cases (area: incident). BreakGlasses
// on the shared cluster are scoped to the case's own namespaces; the
// stories that compare webhook configurations byte for byte run Isolated.

var bgSeq atomic.Int32

// providerOf is the provider a BreakGlass targets on m.
func providerOf(m Mesh) meshv1alpha1.Provider {
	switch m {
	case Linkerd:
		return meshv1alpha1.ProviderLinkerd
	case Cilium:
		return meshv1alpha1.ProviderCilium
	}
	return meshv1alpha1.ProviderIstio
}

// GoodBreakGlass is a valid BreakGlass of m over the listed namespaces,
// with a name unique in the suite (the kind is cluster-scoped).
func GoodBreakGlass(m Mesh, nss ...string) *meshv1alpha1.BreakGlass {
	return &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hostile-bg-%d", bgSeq.Add(1))},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "hostile: control plane down",
			Target: meshv1alpha1.BreakGlassTarget{Provider: providerOf(m)},
			Scope:  &meshv1alpha1.BreakGlassScope{Namespaces: nss}}}
}

// nsObj is a namespace to snapshot.
func nsObj(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// phase waits until bg has phase p.
func (h *H) phase(bg *meshv1alpha1.BreakGlass, p meshv1alpha1.BreakGlassPhase) {
	h.Helper()
	h.Eventually(fmt.Sprintf("BreakGlass %s %s", bg.Name, p), func() error {
		if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(bg), bg); err != nil {
			return err
		}
		if bg.Status.Phase != p {
			return fmt.Errorf("phase %q: %s", bg.Status.Phase, condOf(bg, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
}

func condOf(bg *meshv1alpha1.BreakGlass, typ string) string {
	for _, c := range bg.Status.Conditions {
		if c.Type == typ {
			return string(c.Status) + "/" + c.Reason + ": " + c.Message
		}
	}
	return "<none>"
}

// gone deletes bg and waits until it no longer exists.
func (h *H) glassGone(bg *meshv1alpha1.BreakGlass) {
	h.Helper()
	if err := h.C.Delete(h.Ctx, bg); err != nil && !apierrors.IsNotFound(err) {
		h.Fatal(err)
	}
	h.Eventually("BreakGlass "+bg.Name+" gone", func() error {
		err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(bg), &meshv1alpha1.BreakGlass{})
		if err == nil {
			return fmt.Errorf("still there: %s", condOf(bg, meshv1alpha1.ReadyCondition))
		}
		return client.IgnoreNotFound(err)
	})
}

// exactly waits for bg's Ready condition to be False with reason and
// exactly msg, and Stalled.
func (h *H) exactly(bg *meshv1alpha1.BreakGlass, reason, msg string) {
	h.Helper()
	c := h.Stalled(bg, reason, msg)
	if c.Message != msg {
		h.Fatalf("message\n got %q\nwant %q", c.Message, msg)
	}
}

// noRecord asserts bg wrote no record Secret.
func (h *H) noRecord(bg *meshv1alpha1.BreakGlass) {
	h.Helper()
	err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: harness.OperatorNamespace, Name: "breakglass-" + bg.Name}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		h.Fatalf("BreakGlass %s has a record Secret (err %v)", bg.Name, err)
	}
}

func init() {
	RegisterControl("BreakGlass", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		before := h.Snapshot(nsObj(ns))
		bg := GoodBreakGlass(m, ns)
		h.Create(bg)
		h.phase(bg, meshv1alpha1.BreakGlassEngaged)
		h.glassGone(bg)
		h.Unchanged(before)
	})
	for _, m := range Meshes {
		registerBreakGlass(m)
	}
	registerBreakGlassSpec()
	registerRootCA()
}

func registerBreakGlass(m Mesh) {
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: m, Name: "second BreakGlass on a held namespace is Conflict",
		Run: func(h *H) {
			a, b := h.Namespace(m), h.Namespace(m)
			before := h.Snapshot(nsObj(a), nsObj(b))
			first := GoodBreakGlass(m, a)
			h.Create(first)
			h.phase(first, meshv1alpha1.BreakGlassEngaged)
			engaged := h.Snapshot(nsObj(a), nsObj(b))
			second := GoodBreakGlass(m, b, a)
			h.Create(second)
			h.exactly(second, meshv1alpha1.ConflictReason, fmt.Sprintf("namespace %s is already held by BreakGlass %s; this BreakGlass holds nothing and changed nothing. "+
				"It engages by itself once the other is deleted and restored; or delete it and list in spec.scope.namespaces only namespaces no other BreakGlass holds", a, first.Name))
			if second.Status.Phase != meshv1alpha1.BreakGlassPending || second.Status.Record != nil {
				h.Fatalf("refused BreakGlass: phase %s record %+v", second.Status.Phase, second.Status.Record)
			}
			h.Unchanged(engaged)
			h.noRecord(second)
			h.glassGone(first)
			h.phase(second, meshv1alpha1.BreakGlassEngaged)
			h.glassGone(second)
			h.Unchanged(before)
			h.Control("BreakGlass", m)
		}})
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: m, Name: "record Secret deleted while engaged",
		Run: func(h *H) {
			ns := h.Namespace(m)
			before := h.Snapshot(nsObj(ns))
			bg := GoodBreakGlass(m, ns)
			h.Create(bg)
			h.phase(bg, meshv1alpha1.BreakGlassEngaged)
			engaged := h.Snapshot(nsObj(ns))
			key := client.ObjectKey{Namespace: harness.OperatorNamespace, Name: "breakglass-" + bg.Name}
			s := &corev1.Secret{}
			h.Must(h.C.Get(h.Ctx, key, s))
			kept := s.Data[incident.RecordKey]
			// A plain delete is held by the record finalizer.
			h.Must(h.C.Delete(h.Ctx, s))
			h.Consistently(time.Second, "still Engaged with the record held", func() error {
				if err := h.C.Get(h.Ctx, key, s); err != nil {
					return err
				}
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(bg), bg); err != nil || bg.Status.Phase != meshv1alpha1.BreakGlassEngaged {
					return fmt.Errorf("phase %s (%v)", bg.Status.Phase, err)
				}
				return nil
			})
			// Forced: the finalizer removed by hand.
			orig := s.DeepCopy()
			s.Finalizers = nil
			h.Must(h.C.Patch(h.Ctx, s, client.MergeFrom(orig)))
			policies := ", relaxed policies" // relaxPolicies defaults to on
			want := fmt.Sprintf("record Secret %s was deleted; the prior state of namespaces %s (injection labels, webhooks%s) cannot be restored without it, "+
				"and nothing is restored or re-recorded. status.record.data holds a copy: recreate it with `kubectl create secret generic %s -n %s "+
				"--from-file=record.json.gz=<(kubectl get breakglass %s -o jsonpath='{.status.record.data}' | base64 -d)`, or, to give up restoring, "+
				"annotate this BreakGlass meshplane.io/accept-record-loss=true and delete it (Meshplane then removes only its NotIn requirement from the "+
				"webhooks and its meshplane.io/break-glass annotations; the namespaces' injection labels stay as they are now)",
				key, ns, policies, key.Name, key.Namespace, bg.Name)
			h.exactly(bg, meshv1alpha1.RecordLostReason, want)
			if bg.Status.Phase != meshv1alpha1.BreakGlassFailed {
				h.Fatalf("phase %s, want Failed", bg.Status.Phase)
			}
			// Deleting it restores nothing and keeps it.
			h.Must(h.C.Delete(h.Ctx, bg))
			h.Consistently(2*time.Second, "deletion waits for the record", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(bg), bg); err != nil {
					return err
				}
				if bg.Status.Phase == meshv1alpha1.BreakGlassRestored {
					return fmt.Errorf("reported Restored without a record")
				}
				return nil
			})
			h.Unchanged(engaged)
			h.noRecord(bg)
			// The record recreated from status: restored exactly.
			if string(bg.Status.Record.Data) != string(kept) {
				h.Fatal("status.record.data is not the record")
			}
			h.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
				Data: map[string][]byte{incident.RecordKey: bg.Status.Record.Data}})
			h.glassGone(bg)
			h.Unchanged(before)
			h.Control("BreakGlass", m)
		}})
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: m, Name: "scope lists a namespace that does not exist",
		Run: func(h *H) {
			ns := h.Namespace(m)
			before := h.Snapshot(nsObj(ns))
			bg := GoodBreakGlass(m, ns, "no-such-namespace-x")
			h.Create(bg)
			h.exactly(bg, meshv1alpha1.InvalidSpecReason, `spec.scope.namespaces[1]: namespace "no-such-namespace-x" does not exist; nothing was changed; `+
				"scope is immutable: delete this BreakGlass and create one that lists existing namespaces only")
			h.Unchanged(before)
			h.noRecord(bg)
			h.glassGone(bg)
			h.Unchanged(before)
			h.Control("BreakGlass", m)
		}})
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: m, Name: "scope lists a namespace being deleted",
		Run: func(h *H) {
			ns, doomed := h.Namespace(m), h.Namespace(m)
			h.Must(h.C.Delete(h.Ctx, nsObj(doomed))) // envtest never finishes it
			before := h.Snapshot(nsObj(ns), nsObj(doomed))
			bg := GoodBreakGlass(m, doomed, ns)
			h.Create(bg)
			h.exactly(bg, meshv1alpha1.InvalidSpecReason, fmt.Sprintf(`spec.scope.namespaces[0]: namespace %q is being deleted; nothing was changed; `+
				"scope is immutable: delete this BreakGlass and create one that lists existing namespaces only", doomed))
			h.Unchanged(before)
			h.noRecord(bg)
			h.glassGone(bg)
			h.Control("BreakGlass", m)
		}})
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: m, Name: "selector matching no namespace",
		Run: func(h *H) {
			bg := GoodBreakGlass(m)
			bg.Spec.Scope = &meshv1alpha1.BreakGlassScope{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"hostile.meshplane.io/nothing": bg.Name}}}
			h.Create(bg)
			h.exactly(bg, meshv1alpha1.InvalidSpecReason, fmt.Sprintf("spec.scope.namespaceSelector (hostile.meshplane.io/nothing=%s) matches no namespace; "+
				"nothing was changed; scope is immutable: delete this BreakGlass and create one whose selector matches the namespaces to detach", bg.Name))
			h.noRecord(bg)
			h.glassGone(bg)
			h.Control("BreakGlass", m)
		}})
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: m, Name: "overlapping BreakGlasses restored in every order",
		Run: func(h *H) { overlapStory(h, m) }})
}

// meshWebhooks creates the injector and policy validator configurations of
// m (fail-closed, unreachable); Cilium has none.
func meshWebhooks(h *H, m Mesh) []client.Object {
	url := "https://127.0.0.1:1/dead"
	hook := func(name string, sel *metav1.LabelSelector) (admissionregistrationv1.MutatingWebhook, admissionregistrationv1.ValidatingWebhook) {
		cc := admissionregistrationv1.WebhookClientConfig{URL: &url}
		rules := []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}}
		fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
		return admissionregistrationv1.MutatingWebhook{Name: name, ClientConfig: cc, Rules: rules, FailurePolicy: &fail, SideEffects: &none,
				NamespaceSelector: sel, AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: ptr.To[int32](1)},
			admissionregistrationv1.ValidatingWebhook{Name: name, ClientConfig: cc, Rules: rules, FailurePolicy: &fail, SideEffects: &none,
				NamespaceSelector: sel, AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: ptr.To[int32](1)}
	}
	// The shared cluster: a selector no other case's namespace carries, so
	// the dead webhooks block nobody else's pods.
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "hostile.meshplane.io/dead-webhooks", Operator: metav1.LabelSelectorOpExists}}}
	var mutName, valName, hookName string
	switch m {
	case Istio:
		n := bgSeq.Add(1)
		mutName, valName, hookName = fmt.Sprintf("istio-sidecar-injector-hostile-%d", n), fmt.Sprintf("istio-validator-hostile-%d", n), "namespace.sidecar-injector.istio.io"
	case Linkerd:
		// One name per cluster: shared by the Linkerd cases, never deleted.
		mutName, valName, hookName = "linkerd-proxy-injector-webhook-config", "linkerd-policy-validator-webhook-config", "linkerd-proxy-injector.linkerd.io"
	default:
		return nil
	}
	mw, vw := hook(hookName, sel)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mutName}, Webhooks: []admissionregistrationv1.MutatingWebhook{mw}}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: valName}, Webhooks: []admissionregistrationv1.ValidatingWebhook{vw}}
	for _, o := range []client.Object{mwc, vwc} {
		if err := h.C.Create(h.Ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			h.Fatal(err)
		}
	}
	if m == Istio {
		h.Cleanup(func() { _ = h.C.Delete(h.Ctx, mwc); _ = h.C.Delete(h.Ctx, vwc) })
	}
	return []client.Object{mwc, vwc}
}

// webhookState renders the webhooks of cfgs without the NotIn requirements
// of BreakGlasses over namespaces other than mine (other cases run in
// parallel on the shared cluster): everything else must be byte for byte
// what it was, and no requirement over mine may be left.
func webhookState(h *H, cfgs []client.Object, mine []string) string {
	h.Helper()
	var out []string
	for _, o := range cfgs {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("admissionregistration.k8s.io/v1")
		switch o.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			u.SetKind("MutatingWebhookConfiguration")
		default:
			u.SetKind("ValidatingWebhookConfiguration")
		}
		h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(o), u))
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for _, hk := range hooks {
			w := hk.(map[string]any)
			exprs, _, _ := unstructured.NestedSlice(w, "namespaceSelector", "matchExpressions")
			var kept []any
			for _, e := range exprs {
				em := e.(map[string]any)
				vals, _, _ := unstructured.NestedStringSlice(em, "values")
				foreign := em["key"] == incident.NamespaceNameLabel && !slices.ContainsFunc(vals, func(v string) bool { return slices.Contains(mine, v) })
				if !foreign {
					kept = append(kept, e)
				}
			}
			if len(kept) > 0 {
				h.Must(unstructured.SetNestedSlice(w, kept, "namespaceSelector", "matchExpressions"))
			} else {
				unstructured.RemoveNestedField(w, "namespaceSelector", "matchExpressions")
			}
		}
		b, err := json.Marshal(hooks)
		h.Must(err)
		out = append(out, u.GetName()+": "+string(b))
	}
	return strings.Join(out, "\n")
}

// overlapStory: two and three BreakGlasses over different namespaces of m,
// created and deleted in every order (and a third on a held namespace);
// the webhooks and namespaces end byte for byte as they began.
func overlapStory(h *H, m Mesh) {
	cfgs := meshWebhooks(h, m)
	var nss []string
	var objs []client.Object
	for range 3 {
		ns := h.Namespace(m)
		nss = append(nss, ns)
		objs = append(objs, nsObj(ns))
	}
	before := h.Snapshot(objs...)
	hooksBefore := webhookState(h, cfgs, nss)
	same := func(what string) {
		h.Helper()
		h.Unchanged(before)
		if now := webhookState(h, cfgs, nss); now != hooksBefore {
			h.Fatalf("%s: webhooks not restored:\nbefore %s\nafter  %s", what, hooksBefore, now)
		}
	}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, create := range orders {
		del := orders[(slices.IndexFunc(orders, func(o []int) bool { return slices.Equal(o, create) })+1)%len(orders)]
		bgs := make([]*meshv1alpha1.BreakGlass, 3)
		for _, i := range create {
			bgs[i] = GoodBreakGlass(m, nss[i])
			h.Create(bgs[i])
			h.phase(bgs[i], meshv1alpha1.BreakGlassEngaged)
		}
		if engaged := webhookState(h, cfgs, nss); len(cfgs) > 0 {
			for _, ns := range nss {
				if n := strings.Count(engaged, `"values":["`+ns+`"]`); n != len(cfgs) {
					h.Fatalf("engaged webhooks carry %d NotIn requirements on %s, want one per webhook (%d): %s", n, ns, len(cfgs), engaged)
				}
			}
		}
		for _, i := range del {
			h.glassGone(bgs[i])
		}
		same(fmt.Sprintf("created %v, deleted %v", create, del))
	}
	for _, del := range [][]int{{0, 1}, {1, 0}} {
		bgs := []*meshv1alpha1.BreakGlass{GoodBreakGlass(m, nss[0]), GoodBreakGlass(m, nss[1], nss[2])}
		for _, bg := range bgs {
			h.Create(bg)
			h.phase(bg, meshv1alpha1.BreakGlassEngaged)
		}
		for _, i := range del {
			h.glassGone(bgs[i])
		}
		same(fmt.Sprintf("two, deleted %v", del))
	}
}

func registerBreakGlassSpec() {
	refused := []struct {
		name string
		edit func(*meshv1alpha1.BreakGlass)
		want []string
	}{
		{"expiresAfter 59s", func(b *meshv1alpha1.BreakGlass) { b.Spec.ExpiresAfter = &metav1.Duration{Duration: 59 * time.Second} },
			[]string{`spec.expiresAfter: Invalid value: "59s": expiresAfter must be between 1m and 8760h; got 59s`}},
		{"expiresAfter zero", func(b *meshv1alpha1.BreakGlass) { b.Spec.ExpiresAfter = &metav1.Duration{} },
			[]string{`spec.expiresAfter: Invalid value: "0s": expiresAfter must be between 1m and 8760h; got 0s`}},
		{"expiresAfter negative", func(b *meshv1alpha1.BreakGlass) { b.Spec.ExpiresAfter = &metav1.Duration{Duration: -time.Hour} },
			[]string{`expiresAfter "-1h0m0s" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)`}},
		{"both scope kinds", func(b *meshv1alpha1.BreakGlass) {
			b.Spec.Scope.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		}, []string{"set at most one of scope.namespaceSelector and scope.namespaces"}},
		{"both target kinds", func(b *meshv1alpha1.BreakGlass) {
			b.Spec.Target.MeshInstallRef = &meshv1alpha1.LocalObjectReference{Name: "istio"}
		}, []string{"set exactly one of target.meshInstallRef and target.provider"}},
		{"namespace name with a slash", func(b *meshv1alpha1.BreakGlass) { b.Spec.Scope.Namespaces = []string{"shop/web"} },
			[]string{"spec.scope.namespaces[0]"}},
		{"empty reason", func(b *meshv1alpha1.BreakGlass) { b.Spec.Reason = "" }, []string{"spec.reason"}},
	}
	for _, r := range refused {
		Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: AnyMesh, Name: "create " + r.name,
			Run: func(h *H) {
				bg := GoodBreakGlass(Istio, "default")
				r.edit(bg)
				h.Refused(bg, r.want...)
			}})
	}
	// expiresAfter as a string the typed client cannot send.
	Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: AnyMesh, Name: "create expiresAfter banana",
		Run: func(h *H) {
			bg := GoodBreakGlass(Istio, "default")
			raw, err := json.Marshal(bg)
			h.Must(err)
			var u map[string]any
			h.Must(json.Unmarshal(raw, &u))
			u["apiVersion"], u["kind"] = meshv1alpha1.GroupVersion.String(), "BreakGlass"
			u["spec"].(map[string]any)["expiresAfter"] = "banana"
			obj := &unstructured.Unstructured{Object: u}
			h.Rejected(h.C.Create(h.Ctx, obj), "expiresAfter")
			h.noRecord(bg)
		}})
	immutable := []struct {
		name string
		edit func(*meshv1alpha1.BreakGlass)
		want string
	}{
		{"scope", func(b *meshv1alpha1.BreakGlass) { b.Spec.Scope.Namespaces = append(b.Spec.Scope.Namespaces, "default") },
			"scope is immutable; delete this BreakGlass (which restores) and create another"},
		{"target", func(b *meshv1alpha1.BreakGlass) { b.Spec.Target.Provider = meshv1alpha1.ProviderLinkerd },
			"target is immutable; delete this BreakGlass and create another"},
		{"actions", func(b *meshv1alpha1.BreakGlass) { b.Spec.Actions.RestartWorkloads = true },
			"actions are immutable; delete this BreakGlass (which restores) and create another"},
	}
	for _, im := range immutable {
		Register(Case{Category: "breakglass", Kind: "BreakGlass", Mesh: Istio, Name: "update engaged " + im.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				before := h.Snapshot(nsObj(ns))
				bg := GoodBreakGlass(Istio, ns)
				h.Create(bg)
				h.phase(bg, meshv1alpha1.BreakGlassEngaged)
				gen := bg.Generation
				h.Rejected(h.Update(bg, func() { im.edit(bg) }), im.want)
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(bg), bg))
				if bg.Generation != gen || bg.Status.Phase != meshv1alpha1.BreakGlassEngaged {
					h.Fatalf("refused update changed the BreakGlass: generation %d->%d phase %s", gen, bg.Generation, bg.Status.Phase)
				}
				h.glassGone(bg)
				h.Unchanged(before)
			}})
	}
}

// rootCert makes a root CA certificate and key from a template edit; key
// is the certificate's key unless other is set.
func rootCert(h *H, edit func(*x509.Certificate), weak bool, otherKey bool) (certPEM, keyPEM []byte) {
	h.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "hostile-root"},
		NotBefore: time.Now().Add(-time.Hour).Truncate(time.Second), NotAfter: time.Now().Add(24 * time.Hour).Truncate(time.Second),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	edit(tmpl)
	var der, kp []byte
	var err error
	if weak {
		k, kerr := rsa.GenerateKey(rand.Reader, 1024)
		h.Must(kerr)
		der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		h.Must(err)
		kd, merr := x509.MarshalPKCS8PrivateKey(k)
		h.Must(merr)
		kp = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	} else {
		k, kerr := trust.GenerateKey("")
		h.Must(kerr)
		der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		h.Must(err)
		kp, err = trust.EncodeKey(k)
		h.Must(err)
	}
	if otherKey {
		k, kerr := trust.GenerateKey("")
		h.Must(kerr)
		kp, err = trust.EncodeKey(k)
		h.Must(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp
}

func registerRootCA() {
	past := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	future := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	bad := []struct {
		name      string
		edit      func(*x509.Certificate)
		weak, key bool
		want      string
	}{
		{"root with pathlen 0", func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true }, false, false,
			`invalid CA: certificate "CN=hostile-root" has basic constraints pathlen:0, so it may sign only end-entity certificates, but Meshplane signs a ` +
				`per-cluster intermediate CA with it and every workload chain would fail to verify; issue the root without a path length constraint or with ` +
				`pathlen >= 1 (openssl: basicConstraints=critical,CA:TRUE; cert-manager: isCA: true without a pathlen)`},
		{"root not a CA", func(c *x509.Certificate) { c.IsCA = false }, false, false,
			`invalid CA: certificate "CN=hostile-root" is not a CA (basic constraints CA:TRUE missing); supply a CA certificate`},
		{"root expired", func(c *x509.Certificate) { c.NotBefore, c.NotAfter = past.Add(-time.Hour), past }, false, false,
			`invalid CA: certificate "CN=hostile-root" expired at ` + past.UTC().Format(time.RFC3339)},
		{"root not yet valid", func(c *x509.Certificate) { c.NotBefore, c.NotAfter = future, future.Add(time.Hour) }, false, false,
			`invalid CA: certificate "CN=hostile-root" is not valid before ` + future.UTC().Format(time.RFC3339)},
		{"root without keyCertSign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }, false, false,
			`invalid CA: certificate "CN=hostile-root" may not sign certificates (key usage keyCertSign missing)`},
		{"root with another key", func(*x509.Certificate) {}, false, true,
			`invalid CA: private key does not match certificate "CN=hostile-root"`},
		{"root with an RSA 1024 key", func(*x509.Certificate) {}, true, false,
			`invalid CA: certificate "CN=hostile-root" has an RSA 1024-bit key (too weak), which is not supported (use ECDSA P-256/P-384 or RSA 2048/3072/4096)`},
	}
	for _, b := range bad {
		Register(Case{Category: "trust", Kind: "MeshFederation", Mesh: AnyMesh, Name: "supplied " + b.name,
			Run: func(h *H) {
				f := GoodFederation(meshv1alpha1.ProviderIstio)
				secret := f.Name + "-root"
				cert, key := rootCert(h, b.edit, b.weak, b.key)
				h.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: harness.OperatorNamespace, Name: secret}, Type: corev1.SecretTypeTLS,
					Data: map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}})
				f.Spec.Root = &meshv1alpha1.RootCA{SecretRef: &meshv1alpha1.SecretKeyReference{Name: secret}}
				h.Create(f)
				want := fmt.Sprintf("spec.root.secretRef: root Secret %s/%s (tls.crt, tls.key): %s; nothing already distributed was changed",
					harness.OperatorNamespace, secret, b.want)
				c := h.Stalled(f, meshv1alpha1.InvalidCertificateReason, want)
				if c.Message != want {
					h.Fatalf("message\n got %q\nwant %q", c.Message, want)
				}
				// Nothing was stored: no CA state Secret.
				err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: harness.OperatorNamespace, Name: meshfederation.CASecretName(f.Name)}, &corev1.Secret{})
				if !apierrors.IsNotFound(err) {
					h.Fatalf("a refused root was stored (err %v)", err)
				}
				h.Must(h.C.Delete(h.Ctx, f))
			}})
	}
}
