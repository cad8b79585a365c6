package hostile

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// kinds knows every Meshplane, mesh and core kind.
var kinds = scheme.New()

// Mesh is the mesh a case runs on.
type Mesh string

// The meshes; AnyMesh for a case about a kind no mesh serves (MeshFederation
// validation, an API-server rejection that happens before any mesh is chosen).
const (
	Istio   Mesh = "istio"
	Linkerd Mesh = "linkerd"
	Cilium  Mesh = "cilium"
	AnyMesh Mesh = "any"
)

// Meshes are the three meshes, for cases written once for each.
var Meshes = []Mesh{Istio, Linkerd, Cilium}

// Case is one hostile input and the assertions of the whole promise.
type Case struct {
	// Category groups cases in the count (e.g. "duration", "half-applied",
	// "foreign", "silent-drop", "overlap", "secret", "breakglass").
	Category string
	// Kind is the Meshplane kind under attack.
	Kind string
	// Mesh it runs on.
	Mesh Mesh
	// Name says what is tried.
	Name string
	// Isolated cases get their own API server and manager (h.Cfg); use it to
	// restart the manager or to store objects before a rule exists.
	Isolated bool
	// Run tries the input and asserts.
	Run func(h *H)
}

func (c Case) path() string {
	return strings.Join([]string{c.Kind, string(c.Mesh), c.Category, c.Name}, "/")
}

var (
	registryMu sync.Mutex
	cases      []Case
)

// Register adds cases to the suite; call it from an init function.
func Register(cs ...Case) {
	registryMu.Lock()
	defer registryMu.Unlock()
	cases = append(cases, cs...)
}

// H is a case's handle on its cluster.
type H struct {
	*testing.T
	// Ctx ends with the case.
	Ctx context.Context
	// C is an uncached administrator client.
	C client.Client
	// Cfg is the API server's admin config.
	Cfg *rest.Config
	// Mgr is the manager running every controller against Cfg.
	Mgr *harness.Manager
}

var (
	sharedOnce sync.Once
	sharedMgr  *harness.Manager
	sharedErr  error
)

// shared starts the one manager of the non-isolated cases; it runs until
// TestHostile ends.
func shared(t *testing.T) *harness.Manager {
	sharedOnce.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				sharedErr = fmt.Errorf("starting the shared manager: %v", r)
			}
		}()
		sharedMgr = harness.StartManager(t, env.Cfg(t))
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedMgr
}

// newH builds a case's handle: the shared cluster and manager, or its own.
func newH(t *testing.T, parent *harness.Manager, isolated bool) *H {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if !isolated {
		return &H{T: t, Ctx: ctx, C: testenv.NewClient(t, env.Cfg(t)), Cfg: env.Cfg(t), Mgr: parent}
	}
	s, err := cluster.StartServer(cluster.EnvtestOptions{})
	if err != nil {
		t.Fatalf("starting the case's API server: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	h := &H{T: t, Ctx: ctx, C: testenv.NewClient(t, s.Config), Cfg: s.Config}
	return h
}

// StartManager starts a manager with every controller against the case's
// cluster (isolated cases start theirs when their stored objects are in
// place; it stops when the case ends or when stop is called).
func (h *H) StartManager() *harness.Manager {
	h.Helper()
	// The shared manager's start set the Helm cache directory, so this
	// one, in a parallel case, does not set it again (testenv).
	h.Mgr = harness.StartManager(h.T, h.Cfg)
	return h.Mgr
}

// Namespace creates a fresh namespace of the case served by m: Istio by the
// istio-injection label, Linkerd by the linkerd.io/inject annotation, Cilium
// (and AnyMesh) a plain namespace; objects for Cilium set spec.provider
// (Provider).
func (h *H) Namespace(m Mesh) string {
	h.Helper()
	switch m {
	case Istio:
		return testenv.Namespace(h.T, h.C, map[string]string{"istio-injection": "enabled"})
	case Linkerd:
		return testenv.AnnotatedNamespace(h.T, h.C, nil, map[string]string{"linkerd.io/inject": "enabled"})
	default:
		return testenv.Namespace(h.T, h.C, nil)
	}
}

// Provider is the spec.provider a case's object sets on m: Cilium is chosen
// explicitly (a Cilium MeshInstall would claim every namespace of the shared
// cluster), Istio and Linkerd by their namespace marks.
func Provider(m Mesh) meshv1alpha1.Provider {
	if m == Cilium {
		return meshv1alpha1.ProviderCilium
	}
	return ""
}

// Service creates Service name in ns with the given TCP ports (8080 when
// none) and a selector app=name.
func (h *H) Service(ns, name string, ports ...int32) *corev1.Service {
	h.Helper()
	if len(ports) == 0 {
		ports = []int32{8080}
	}
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("http-%d", p), Port: p, Protocol: corev1.ProtocolTCP})
	}
	h.Must(h.C.Create(h.Ctx, s))
	return s
}

// Must fails the case on err.
func (h *H) Must(err error) {
	h.Helper()
	if err != nil {
		h.Fatal(err)
	}
}

// Create creates obj and fails the case if the API server refuses it.
func (h *H) Create(obj client.Object) {
	h.Helper()
	if err := h.C.Create(h.Ctx, obj); err != nil {
		h.Fatalf("creating %s: %v", describe(obj), err)
	}
}

// Update reads obj's current state, applies mutate and updates it; it
// returns the API server's answer (use Rejected on it for a refused update).
// A conflict with a controller's write is retried on a fresh read.
func (h *H) Update(obj client.Object, mutate func()) error {
	h.Helper()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(obj), obj))
		mutate()
		return h.C.Update(h.Ctx, obj)
	})
}

// Rejected asserts err is the API server refusing the request (Invalid,
// BadRequest or Forbidden) with a message that contains every want.
func (h *H) Rejected(err error, want ...string) {
	h.Helper()
	if err == nil {
		h.Fatalf("the API server accepted the request; want a refusal containing %q", want)
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) && !apierrors.IsForbidden(err) {
		h.Fatalf("want a refusal (Invalid/BadRequest/Forbidden), got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			h.Fatalf("refusal %q does not contain %q", err.Error(), w)
		}
	}
}

// Refused creates obj, asserts the API server refuses it with every want in
// its message, and that obj does not exist afterwards.
func (h *H) Refused(obj client.Object, want ...string) {
	h.Helper()
	h.Rejected(h.C.Create(h.Ctx, obj), want...)
	got := obj.DeepCopyObject().(client.Object)
	if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(obj), got); !apierrors.IsNotFound(err) {
		h.Fatalf("%s exists after its refusal (err %v)", describe(obj), err)
	}
}

// commonStatus is every Meshplane kind.
type commonStatus interface {
	client.Object
	GetCommonStatus() *meshv1alpha1.CommonStatus
}

// Condition waits until obj's condition typ has status st and reason, at the
// object's current generation, with a message containing every msg; it
// returns the condition. An empty reason matches any.
func (h *H) Condition(obj commonStatus, typ string, st metav1.ConditionStatus, reason string, msg ...string) metav1.Condition {
	h.Helper()
	var got metav1.Condition
	testenv.Eventually(h.T, testenv.DefaultTimeout, fmt.Sprintf("%s %s=%s/%s", describe(obj), typ, st, reason), func() error {
		if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		cs := obj.GetCommonStatus()
		c := status.Get(cs, typ)
		switch {
		case c == nil:
			return fmt.Errorf("no %s condition: %s", typ, testenv.Conditions(cs))
		case cs.ObservedGeneration != obj.GetGeneration() || c.ObservedGeneration != obj.GetGeneration():
			return fmt.Errorf("observedGeneration %d/%d, generation %d: %s", cs.ObservedGeneration, c.ObservedGeneration, obj.GetGeneration(), testenv.Conditions(cs))
		case c.Status != st || (reason != "" && c.Reason != reason):
			return fmt.Errorf("%s is %s/%s: %s", typ, c.Status, c.Reason, c.Message)
		}
		for _, m := range msg {
			if !strings.Contains(c.Message, m) {
				return fmt.Errorf("%s message %q does not contain %q", typ, c.Message, m)
			}
		}
		got = *c
		return nil
	})
	return got
}

// Ready waits until obj is Ready=True at its current generation.
func (h *H) Ready(obj commonStatus) {
	h.Helper()
	h.Condition(obj, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
}

// Stalled waits until obj is Ready=False with reason and a message that
// contains every msg, and Stalled=True.
func (h *H) Stalled(obj commonStatus, reason string, msg ...string) metav1.Condition {
	h.Helper()
	c := h.Condition(obj, meshv1alpha1.ReadyCondition, metav1.ConditionFalse, reason, msg...)
	if s := status.Get(obj.GetCommonStatus(), meshv1alpha1.StalledCondition); s == nil || s.Status != metav1.ConditionTrue {
		h.Fatalf("%s: Ready=False/%s but not Stalled: %s", describe(obj), reason, testenv.Conditions(obj.GetCommonStatus()))
	}
	return c
}

// Inventory is what exists in a namespace: "Kind/name" -> resourceVersion,
// for every mesh output kind and the core kinds Meshplane writes.
type Inventory map[string]string

// Inventory lists the namespace's objects of every output kind of every
// mesh, Services, ConfigMaps and Secrets, and the namespace itself.
func (h *H) Inventory(ns string) Inventory {
	h.Helper()
	inv := Inventory{}
	for _, gvk := range inventoryKinds(h) {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := h.C.List(h.Ctx, l, client.InNamespace(ns)); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue
			}
			h.Fatalf("listing %s in %s: %v", gvk.Kind, ns, err)
		}
		for _, o := range l.Items {
			inv[gvk.Kind+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	nsObj := &corev1.Namespace{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: ns}, nsObj))
	inv["Namespace/"+ns] = nsObj.ResourceVersion
	return inv
}

// Same asserts the inventory now is exactly before: no object added,
// removed or written.
func (h *H) Same(ns string, before Inventory) {
	h.Helper()
	after := h.Inventory(ns)
	var diff []string
	for k, rv := range before {
		switch a, ok := after[k]; {
		case !ok:
			diff = append(diff, "removed "+k)
		case a != rv:
			diff = append(diff, "written "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "added "+k)
		}
	}
	if len(diff) > 0 {
		slices.Sort(diff)
		h.Fatalf("namespace %s changed: %s", ns, strings.Join(diff, ", "))
	}
}

func inventoryKinds(h *H) []schema.GroupVersionKind {
	reg := providers.Registry()
	objs := append(reg.TrafficOutputKinds(), reg.PolicyOutputKinds()...)
	objs = append(objs, &corev1.Service{}, &corev1.ConfigMap{}, &corev1.Secret{})
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, kinds)
		if err != nil {
			h.Fatalf("kind of %T: %v", o, err)
		}
		if !seen[gvk] {
			seen[gvk] = true
			out = append(out, gvk)
		}
	}
	return out
}

// Snapshot is the content of foreign objects before a case acts.
type Snapshot struct {
	objs  []client.Object
	state map[string]string
}

// Snapshot records objs' labels, annotations, finalizers, owner references
// and everything but metadata and status (spec, data, webhooks, ...).
func (h *H) Snapshot(objs ...client.Object) *Snapshot {
	h.Helper()
	s := &Snapshot{objs: objs, state: map[string]string{}}
	for _, o := range objs {
		s.state[describe(o)] = h.content(o)
	}
	return s
}

// Unchanged asserts every object of the snapshot has its recorded content.
func (h *H) Unchanged(s *Snapshot) {
	h.Helper()
	for _, o := range s.objs {
		if now := h.content(o); now != s.state[describe(o)] {
			h.Fatalf("foreign object %s changed:\nbefore %s\nafter  %s", describe(o), s.state[describe(o)], now)
		}
	}
}

// Eventually polls check until it returns nil (DefaultTimeout).
func (h *H) Eventually(what string, check func() error) {
	h.Helper()
	testenv.Eventually(h.T, testenv.DefaultTimeout, what, check)
}

// Consistently asserts check keeps returning nil for d.
func (h *H) Consistently(d time.Duration, what string, check func() error) {
	h.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := check(); err != nil {
			h.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *H) content(o client.Object) string {
	h.Helper()
	u := &unstructured.Unstructured{}
	gvk, err := apiutil.GVKForObject(o, kinds)
	if err != nil {
		h.Fatalf("kind of %T: %v", o, err)
	}
	u.SetGroupVersionKind(gvk)
	if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(o), u); err != nil {
		if apierrors.IsNotFound(err) {
			return "<absent>"
		}
		h.Fatalf("reading %s: %v", describe(o), err)
	}
	body := u.DeepCopy().Object
	delete(body, "metadata")
	delete(body, "status")
	kept := map[string]any{
		"labels": u.GetLabels(), "annotations": u.GetAnnotations(),
		"finalizers": u.GetFinalizers(), "ownerReferences": u.GetOwnerReferences(), "body": body,
	}
	b, err := json.Marshal(kept)
	h.Must(err)
	return string(b)
}

func describe(o client.Object) string {
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		if gvk, err := apiutil.GVKForObject(o, kinds); err == nil {
			kind = gvk.Kind
		} else {
			kind = fmt.Sprintf("%T", o)
		}
	}
	if o.GetNamespace() == "" {
		return kind + " " + o.GetName()
	}
	return kind + " " + o.GetNamespace() + "/" + o.GetName()
}
