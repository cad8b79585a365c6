package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
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

var gatewayGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}

// TestMigrateSidecarToAmbient moves 6 Istio sidecar namespaces (2
// Deployments and a ZeroTrustPolicy each; three with an L7 rule and a
// TrafficSplit) to ambient in waves of 3 with every controller running. The namespaces with
// L7 rules get a waypoint before they move; a pod-readiness watcher proves
// no namespace was ever without a Ready pod, and an outputs watcher that
// every namespace always had a Meshplane AuthorizationPolicy in force, and
// only Istio's (the one mesh whose CRDs are served). At the end every pod
// runs without a sidecar and every policy is Ready in its ambient form.
// A namespace whose policy runs in Audit (which ambient cannot express)
// is refused before its wave starts and stays in sidecar mode.
func TestMigrateSidecarToAmbient(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 2,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	inj := fakeistiod.Start(t)
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := harness.StartManager(t, sim.Config)
	c := m.Client
	stopWP := programWaypoints(t, sim.Config)
	defer stopWP()

	values := fmt.Sprintf(`{"injector":{"url":%q,"caBundle":%q}}`, inj.URL, inj.CABundle)
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL}, Values: &apiextensionsv1.JSON{Raw: []byte(values)}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	waitMI(t, c, "istio", 60*time.Second, "Ready", ready)

	var nss []string
	for i := range 6 {
		nss = append(nss, fmt.Sprintf("mig-%02d", i))
	}
	makeApps(t, c, nss, map[string]string{"istio-injection": "enabled"}, 2)
	for i, ns := range nss {
		rule := meshv1alpha1.TrafficDestination{Ports: []int32{8080}}
		if i%2 == 0 {
			rule.Methods = []meshv1alpha1.HTTPMethod{"GET"}
		}
		p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
				From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}}, To: []meshv1alpha1.TrafficDestination{rule}}}}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			splitIn(t, c, ns)
		}
	}
	harness.Eventually(t, 60*time.Second, "apps available and injected", func() error {
		if revs := podRevisions(t, c, nss); revs[""] != 0 {
			return fmt.Errorf("pods per revision: %v", revs)
		}
		return allAvailable(c, nss)
	})
	harness.Eventually(t, 30*time.Second, "policies Ready", func() error { return policiesReady(c, nss) })
	rw := watchReadiness(t, sim.Config, nss)
	ow := watchPolicies(t, sim.Config, nss)
	rw.arm()
	ow.arm()

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "to-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Mode: meshv1alpha1.ProfileAmbient,
			Namespaces: nss, Waves: meshv1alpha1.AdoptionWaves{Size: 3, HealthTimeout: &metav1.Duration{Duration: 30 * time.Second}}}}
	start := time.Now()
	if err := c.Create(ctx, ma); err != nil {
		t.Fatal(err)
	}
	got := waitAdoption(t, c, "to-ambient", 120*time.Second, "completed", func(ma *meshv1alpha1.MeshAdoption) bool {
		return adoptionCond(ma, meshv1alpha1.ReadyCondition, "") && ma.Status.Phase == meshv1alpha1.AdoptionCompleted
	})
	t.Logf("6 namespaces moved sidecar → ambient in %s; waves: %s", time.Since(start).Round(10*time.Millisecond), waveTimes(got))
	var wps []string
	for _, w := range got.Status.Waves {
		wps = append(wps, w.Waypoints...)
	}
	if !slices.Equal(wps, []string{"mig-00", "mig-02", "mig-04"}) {
		t.Fatalf("waypoints created for %v, want the L7 namespaces mig-00, mig-02, mig-04", wps)
	}
	harness.Eventually(t, 60*time.Second, "every pod without a sidecar, every policy Ready in ambient", func() error {
		var pods corev1.PodList
		for _, ns := range nss {
			if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp.IsZero() && p.Annotations["sidecar.istio.io/status"] != "" {
					return fmt.Errorf("pod %s/%s still has a sidecar", ns, p.Name)
				}
			}
		}
		if err := allAvailable(c, nss); err != nil {
			return err
		}
		if err := policiesReady(c, nss); err != nil {
			return err
		}
		return splitsOn(c, []string{"mig-00", "mig-02", "mig-04"}, meshv1alpha1.ProviderIstio)
	})
	// The splits route at the waypoint, as Gateway API HTTPRoutes: no
	// VirtualService is left from the sidecar form.
	for _, ns := range []string{"mig-00", "mig-02", "mig-04"} {
		getU(t, c, "gateway.networking.k8s.io", "v1", "HTTPRoute", ns, "web")
		if n := countU(t, c, "networking.istio.io", "v1", "VirtualService", ns); n != 0 {
			t.Fatalf("%d VirtualService(s) left in ambient namespace %s", n, ns)
		}
	}
	rw.check(t)
	ow.check(t)

	t.Run("refused", func(t *testing.T) {
		const ns = "mig-audit"
		makeApps(t, c, []string{ns}, map[string]string{"istio-injection": "enabled"}, 1)
		p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{Enforcement: meshv1alpha1.EnforcementAudit}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		ref := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "to-ambient-refused"},
			Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio"}, Mode: meshv1alpha1.ProfileAmbient,
				Namespaces: []string{ns}}}
		if err := c.Create(ctx, ref); err != nil {
			t.Fatal(err)
		}
		got := waitAdoption(t, c, ref.Name, 30*time.Second, "refused", func(ma *meshv1alpha1.MeshAdoption) bool {
			return adoptionCond(ma, meshv1alpha1.StalledCondition, meshv1alpha1.UnsupportedFeatureReason)
		})
		msg := apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.StalledCondition).Message
		if !strings.Contains(msg, "cannot express ZeroTrustPolicy mig-audit/web: spec.enforcement is Audit but namespace mig-audit is ambient") {
			t.Fatalf("message: %s", msg)
		}
		if l := nsLabels(t, c, ns); l["istio-injection"] != "enabled" || l["istio.io/dataplane-mode"] != "" {
			t.Fatalf("refused namespace relabelled: %v", l)
		}
	})
}

func policiesReady(c client.Client, nss []string) error {
	for _, ns := range nss {
		p := &meshv1alpha1.ZeroTrustPolicy{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, p); err != nil {
			return err
		}
		r := apimeta.FindStatusCondition(p.Status.Conditions, meshv1alpha1.ReadyCondition)
		if r == nil || r.Status != metav1.ConditionTrue || p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("ZeroTrustPolicy %s/web not Ready: %+v", ns, r)
		}
	}
	return nil
}

// programWaypoints stands in for istiod: it reports every waypoint Gateway
// Programmed shortly after it is created.
func programWaypoints(t *testing.T, cfg *rest.Config) func() {
	t.Helper()
	dc := dynamic.NewForConfigOrDie(cfg)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			list, err := dc.Resource(gatewayGVR).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for i := range list.Items {
				g := &list.Items[i]
				conds, _, _ := unstructured.NestedSlice(g.Object, "status", "conditions")
				programmed := false
				for _, cd := range conds {
					if m, ok := cd.(map[string]any); ok && m["type"] == "Programmed" && m["status"] == "True" {
						programmed = true
					}
				}
				if programmed {
					continue
				}
				_ = unstructured.SetNestedSlice(g.Object, []any{map[string]any{"type": "Programmed", "status": "True", "reason": "Programmed",
					"message": "programmed by the test's istiod stand-in", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
					"observedGeneration": g.GetGeneration()}}, "status", "conditions")
				_, _ = dc.Resource(gatewayGVR).Namespace(g.GetNamespace()).UpdateStatus(ctx, g, metav1.UpdateOptions{})
			}
		}
	}()
	return func() { close(stop) }
}

// policyWatch records, from an AuthorizationPolicy informer, whether a
// watched namespace was ever without a Meshplane-owned policy after it was
// armed. Only Istio's policy CRDs are served in the cluster, so a policy in
// force is Istio's by construction; the watcher also fails on any owned
// output of another kind appearing (it watches Istio's only).
type policyWatch struct {
	mu         sync.Mutex
	owned      map[string]map[string]bool // ns -> name
	watched    map[string]bool
	armed      bool
	violations []string
	events     int
}

func watchPolicies(t *testing.T, cfg *rest.Config, namespaces []string) *policyWatch {
	t.Helper()
	pw := &policyWatch{owned: map[string]map[string]bool{}, watched: map[string]bool{}}
	for _, ns := range namespaces {
		pw.watched[ns] = true
	}
	f := dynamicinformer.NewDynamicSharedInformerFactory(dynamic.NewForConfigOrDie(cfg), 0)
	gvr := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}
	inf := f.ForResource(gvr).Informer()
	upd := func(obj any, deleted bool) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				u, _ = d.Obj.(*unstructured.Unstructured)
			}
		}
		if u == nil || !pw.watched[u.GetNamespace()] || u.GetLabels()["app.kubernetes.io/managed-by"] != "meshplane" {
			return
		}
		pw.mu.Lock()
		defer pw.mu.Unlock()
		pw.events++
		m := pw.owned[u.GetNamespace()]
		if m == nil {
			m = map[string]bool{}
			pw.owned[u.GetNamespace()] = m
		}
		if deleted {
			delete(m, u.GetName())
		} else {
			m[u.GetName()] = true
		}
		if pw.armed && len(m) == 0 {
			pw.violations = append(pw.violations, fmt.Sprintf("%s had no AuthorizationPolicy after %s was deleted", u.GetNamespace(), u.GetName()))
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { upd(o, false) },
		UpdateFunc: func(_, o any) { upd(o, false) },
		DeleteFunc: func(o any) { upd(o, true) },
	})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return pw
}

func (pw *policyWatch) arm() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.armed = true
	for ns := range pw.watched {
		if len(pw.owned[ns]) == 0 {
			pw.violations = append(pw.violations, ns+" had no AuthorizationPolicy when the watch was armed")
		}
	}
}

func (pw *policyWatch) check(t *testing.T) {
	t.Helper()
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if len(pw.violations) > 0 {
		t.Fatalf("%d moments with a namespace without a policy in force, first: %v", len(pw.violations), pw.violations[:min(3, len(pw.violations))])
	}
	t.Logf("policy informer saw %d AuthorizationPolicy events; every namespace always had an Istio policy in force", pw.events)
}
