package e2e

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
	"github.com/meshplane/meshplane/test/harness"
)

// linkerdAuthz lists Linkerd's AuthorizationPolicies, the outputs that put
// a ZeroTrustPolicy in force on Linkerd.
var linkerdAuthz = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "AuthorizationPolicyList"}

// TestMigrateLinkerdToIstio moves 4 Linkerd namespaces (2 Deployments, a
// TrafficSplit and a ZeroTrustPolicy each) to Istio's sidecar data plane in
// waves of 2, with every controller running and both meshes installed by
// their MeshInstalls. A pod-readiness watcher proves no namespace was ever
// without a Ready pod; an outputs watcher that every namespace always had
// a Meshplane AuthorizationPolicy in force of the mesh its labels select,
// and of both meshes while it moved. At the end every namespace is on
// Istio only: labels, pods with sidecars, and outputs (Linkerd's pruned).
func TestMigrateLinkerdToIstio(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	ldir := t.TempDir()
	charts.StageLinkerd(t, ldir, "2026.1.1")
	m := harness.StartManager(t, sim.Config)
	c := m.Client

	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	for _, mi := range []*meshv1alpha1.MeshInstall{
		{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
			Chart: &meshv1alpha1.ChartSource{Path: ldir}}},
	} {
		if err := c.Create(ctx, mi); err != nil {
			t.Fatal(err)
		}
	}
	waitMI(t, c, "istio", 60*time.Second, "Ready", ready)
	waitMI(t, c, "linkerd", 90*time.Second, "Ready", ready)

	var nss []string
	for i := range 4 {
		nss = append(nss, fmt.Sprintf("lk-%02d", i))
	}
	ow := watchMeshPolicies(t, sim.Config, nss)
	for _, ns := range nss {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}); err != nil {
			t.Fatal(err)
		}
		makeAppsIn(t, c, ns, 2)
		routed(t, c, ns)
	}
	harness.Eventually(t, 60*time.Second, "apps available", func() error { return allAvailable(c, nss) })
	harness.Eventually(t, 30*time.Second, "policies and splits Ready on Linkerd", func() error {
		if err := policiesReady(c, nss); err != nil {
			return err
		}
		return splitsOn(c, nss, meshv1alpha1.ProviderLinkerd)
	})
	rw := watchReadiness(t, sim.Config, nss)
	ow.arm()
	rw.arm()

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "to-istio"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"},
			Namespaces: nss, Waves: meshv1alpha1.AdoptionWaves{Size: 2, HealthTimeout: &metav1.Duration{Duration: 30 * time.Second}}}}
	start := time.Now()
	if err := c.Create(ctx, ma); err != nil {
		t.Fatal(err)
	}
	got := waitAdoption(t, c, "to-istio", 60*time.Second, "completed", func(ma *meshv1alpha1.MeshAdoption) bool {
		return adoptionCond(ma, meshv1alpha1.ReadyCondition, "") && ma.Status.Phase == meshv1alpha1.AdoptionCompleted
	})
	t.Logf("4 namespaces moved Linkerd → Istio in %s; waves: %s", time.Since(start).Round(10*time.Millisecond), waveTimes(got))
	harness.Eventually(t, 30*time.Second, "every pod with a sidecar, outputs Istio's only", func() error {
		if revs := podRevisions(t, c, nss); revs[""] != 0 {
			return fmt.Errorf("pods per revision: %v", revs)
		}
		if err := allAvailable(c, nss); err != nil {
			return err
		}
		for _, ns := range nss {
			if n, err := owned(c, linkerdAuthz); err != nil || n[ns] != 0 {
				return fmt.Errorf("%s: %d Linkerd AuthorizationPolicies left (%v)", ns, n[ns], err)
			}
			if l := nsLabels(t, c, ns); l["istio-injection"] != "enabled" {
				return fmt.Errorf("%s labels %v", ns, l)
			}
		}
		if err := policiesReady(c, nss); err != nil {
			return err
		}
		return splitsOn(c, nss, meshv1alpha1.ProviderIstio)
	})
	rw.check(t)
	time.Sleep(300 * time.Millisecond) // the informers catch up with the last deletions
	ow.check(t)
}

// routed creates Services web (the root, on d-0), d-0 and d-1, and
// TrafficSplit web (90/10) and ZeroTrustPolicy web in ns.
func routed(t *testing.T, c client.Client, ns string) {
	t.Helper()
	splitIn(t, c, ns)
	if err := c.Create(ctx, &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
			From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}}}}}}); err != nil {
		t.Fatal(err)
	}
}

// splitIn creates Services web (the root, on d-0), d-0 and d-1, and
// TrafficSplit web (90/10) in ns.
func splitIn(t *testing.T, c client.Client, ns string) {
	t.Helper()
	for svc, app := range map[string]string{"web": "d-0", "d-0": "d-0", "d-1": "d-1"} {
		if err := c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "d-0", Weight: 90}, {Name: "d-1", Weight: 10}}}}); err != nil {
		t.Fatal(err)
	}
}

// splitsOn checks every TrafficSplit web is Ready on provider.
func splitsOn(c client.Client, nss []string, provider meshv1alpha1.Provider) error {
	for _, ns := range nss {
		ts := &meshv1alpha1.TrafficSplit{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, ts); err != nil {
			return err
		}
		if ts.Status.Provider != provider || ts.Status.ObservedGeneration != ts.Generation {
			return fmt.Errorf("TrafficSplit %s/web on %q (generation %d observed %d)", ns, ts.Status.Provider, ts.Generation, ts.Status.ObservedGeneration)
		}
		for _, cd := range ts.Status.Conditions {
			if cd.Type == meshv1alpha1.ReadyCondition && cd.Status != metav1.ConditionTrue {
				return fmt.Errorf("TrafficSplit %s/web not Ready: %s", ns, cd.Message)
			}
		}
	}
	return nil
}

// owned counts the Meshplane-owned objects of list kind gvk per
// namespace.
func owned(c client.Reader, gvk schema.GroupVersionKind) (map[string]int, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk)
	if err := c.List(ctx, l, client.MatchingLabels{"app.kubernetes.io/managed-by": "meshplane"}); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, o := range l.Items {
		out[o.GetNamespace()]++
	}
	return out, nil
}

// meshPolicyWatch records, from informers on namespaces and on both
// meshes' AuthorizationPolicies, every version of each watched namespace
// and the lifetime of each Meshplane-owned policy, all in the API
// server's one resourceVersion order (a watch's ADDED object carries the
// version that created it, a DELETED one the version that deleted it).
// check then proves, over the whole timeline after arm, that each version
// of a namespace had, from the version that wrote it to the next one, a
// policy in force of the mesh its labels select, and of both meshes while
// it moved.
type meshPolicyWatch struct {
	mu       sync.Mutex
	watched  map[string]bool
	versions map[string][]nsVersion          // ns -> versions in order
	lives    map[string]map[string]*lifetime // mesh/ns -> uid -> lifetime
	last     int64
	armed    int64
	events   int
}

type nsVersion struct {
	rv   int64
	want []string
}

type lifetime struct{ from, to int64 }

func watchMeshPolicies(t *testing.T, cfg *rest.Config, nss []string) *meshPolicyWatch {
	t.Helper()
	w := &meshPolicyWatch{watched: map[string]bool{}, versions: map[string][]nsVersion{}, lives: map[string]map[string]*lifetime{}, armed: -1}
	for _, ns := range nss {
		w.watched[ns] = true
	}
	f := dynamicinformer.NewDynamicSharedInformerFactory(dynamic.NewForConfigOrDie(cfg), 0)
	handlers := func(on func(u *unstructured.Unstructured, deleted bool)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { on(asUnstructured(o), false) },
			UpdateFunc: func(_, o any) { on(asUnstructured(o), false) },
			DeleteFunc: func(o any) { on(asUnstructured(o), true) },
		}
	}
	_, _ = f.ForResource(corev1.SchemeGroupVersion.WithResource("namespaces")).Informer().AddEventHandler(handlers(w.namespace))
	for mesh, gvr := range map[string]schema.GroupVersionResource{
		"istio":   {Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
		"linkerd": {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "authorizationpolicies"},
	} {
		_, _ = f.ForResource(gvr).Informer().AddEventHandler(handlers(func(u *unstructured.Unstructured, deleted bool) { w.policy(mesh, u, deleted) }))
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return w
}

func asUnstructured(o any) *unstructured.Unstructured {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	u, _ := o.(*unstructured.Unstructured)
	return u
}

// rv reads u's resourceVersion (etcd's revision) and advances last.
func (w *meshPolicyWatch) rv(u *unstructured.Unstructured) int64 {
	v, err := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
	if err != nil {
		return w.last
	}
	w.last = max(w.last, v)
	return v
}

func (w *meshPolicyWatch) namespace(u *unstructured.Unstructured, deleted bool) {
	if u == nil || deleted || !w.watched[u.GetName()] {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	// The mesh the labels select; and the old mesh while its pods may
	// still run (until the move ends). The new mesh's outputs are written
	// after migrating-to is set and before the labels change, so that
	// annotation alone requires nothing.
	var want []string
	l, a := u.GetLabels(), u.GetAnnotations()
	if l["istio-injection"] == "enabled" {
		want = append(want, "istio")
	}
	if a["linkerd.io/inject"] == "enabled" || a["meshplane.io/migrating-from"] == string(meshv1alpha1.ProviderLinkerd) {
		want = append(want, "linkerd")
	}
	w.versions[u.GetName()] = append(w.versions[u.GetName()], nsVersion{rv: w.rv(u), want: want})
}

func (w *meshPolicyWatch) policy(mesh string, u *unstructured.Unstructured, deleted bool) {
	if u == nil || !w.watched[u.GetNamespace()] || u.GetLabels()["app.kubernetes.io/managed-by"] != "meshplane" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	key := mesh + "/" + u.GetNamespace()
	if w.lives[key] == nil {
		w.lives[key] = map[string]*lifetime{}
	}
	rv := w.rv(u)
	life := w.lives[key][string(u.GetUID())]
	switch {
	case life == nil && !deleted:
		w.lives[key][string(u.GetUID())] = &lifetime{from: rv, to: math.MaxInt64}
	case life != nil && deleted:
		life.to = rv
	}
}

// arm starts the judged timeline at the latest version seen.
func (w *meshPolicyWatch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = w.last
}

// covered reports whether the lifetimes of key's policies cover [from, to).
func (w *meshPolicyWatch) covered(key string, from, to int64) bool {
	var ls []lifetime
	for _, l := range w.lives[key] {
		ls = append(ls, *l)
	}
	slices.SortFunc(ls, func(a, b lifetime) int { return cmp.Compare(a.from, b.from) })
	cur := from
	for _, l := range ls {
		if l.from > cur {
			break
		}
		cur = max(cur, l.to)
	}
	return cur >= to
}

func (w *meshPolicyWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var violations []string
	moving := 0
	for ns, vs := range w.versions {
		for i, v := range vs {
			from, to := max(v.rv, w.armed), w.last+1
			if i+1 < len(vs) {
				to = vs[i+1].rv
			}
			if from >= to {
				continue
			}
			if len(v.want) == 0 {
				violations = append(violations, fmt.Sprintf("%s at resourceVersion %d selects no mesh", ns, v.rv))
			}
			for _, m := range v.want {
				if !w.covered(m+"/"+ns, from, to) {
					violations = append(violations, fmt.Sprintf("%s selects %v from resourceVersion %d to %d but had no %s AuthorizationPolicy in force all along", ns, v.want, from, to, m))
				}
			}
			if len(v.want) == 2 {
				moving++
			}
		}
	}
	if len(violations) > 0 {
		t.Fatalf("%d namespace versions without a policy of their mesh in force, first: %v", len(violations), violations[:min(3, len(violations))])
	}
	if moving == 0 {
		t.Fatalf("no namespace version selected both meshes (%d events)", w.events)
	}
	t.Logf("namespace and policy informers saw %d events; every namespace always had an AuthorizationPolicy of the mesh its labels select in force, and of both meshes in the %d versions of a move", w.events, moving)
}
