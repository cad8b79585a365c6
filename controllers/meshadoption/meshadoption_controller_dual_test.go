package meshadoption_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/canary"
	"github.com/meshplane/meshplane/controllers/egresspolicy"
	"github.com/meshplane/meshplane/controllers/meshadoption"
	"github.com/meshplane/meshplane/controllers/resiliencepolicy"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/testenv"
)

// Output groups of a Canary's route and a ResiliencePolicy's own objects,
// per mesh (from their inventories).
const (
	linkerdCanary = "cn:gateway.networking.k8s.io"
	istioCanary   = "cn:networking.istio.io"
	istioRP       = "rp:networking.istio.io"
	// linkerdRP: Linkerd carries the policy as annotations of the target
	// Service (a shared core object, "rp:core").
	linkerdRP = "rp:core"
	linkerdEG = "eg:policy.linkerd.io"
	// linkerdEGRoute: Linkerd routes the allowed hosts with an HTTPRoute.
	linkerdEGRoute = "eg:gateway.networking.k8s.io"
	istioEG        = "eg:networking.istio.io"
)

// routedApp is a namespace with a Canary api (target Deployment api,
// port 8080), a standalone ResiliencePolicy db (retries, a request
// timeout and outlier detection on Service db, which nothing routes) and
// an EgressPolicy egress (api.example.com:80, HTTP).
func routedApp(t *testing.T, c client.Client, name string, annotations map[string]string) {
	t.Helper()
	testenv.Must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}))
	d := deploymentSpec(name)
	d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels = "api", map[string]string{"app": "api"}, map[string]string{"app": "api"}
	testenv.Must(t, c.Create(ctx, d))
	testenv.Must(t, c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}))
	testenv.Must(t, c.Create(ctx, &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: name},
		Spec: meshv1alpha1.CanarySpec{TargetRef: meshv1alpha1.CanaryTargetReference{Name: "api"},
			Service: meshv1alpha1.CanaryService{Port: 8080}, Strategy: meshv1alpha1.StrategyCanary,
			Analysis: meshv1alpha1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
				StepWeight: ptr(int32(50)), MaxWeight: ptr(int32(100))}}}))
	ten := metav1.Duration{Duration: 10 * time.Second}
	testenv.Must(t, c.Create(ctx, &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: name},
		Spec: meshv1alpha1.ResiliencePolicySpec{TargetRef: meshv1alpha1.ServiceReference{Name: "db"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr(int32(5))},
			Retries:          &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3}},
			Timeouts:         &meshv1alpha1.Timeouts{Request: &ten}}}))
	testenv.Must(t, c.Create(ctx, &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "egress", Namespace: name},
		Spec: meshv1alpha1.EgressPolicySpec{Rules: []meshv1alpha1.EgressRule{{Name: "api", Hosts: []string{"api.example.com"},
			Ports: []meshv1alpha1.EgressPort{{Number: 80, Protocol: meshv1alpha1.EgressHTTP}}}}}}))
}

func ptr[T any](v T) *T { return &v }

// routedGroupsOf returns the groups of the outputs of ns's Canary and
// ResiliencePolicy ("cn:<group>", "rp:<group>", "rp:core" for the
// Service a mesh annotates), and their inventories, Service left out.
func routedGroupsOf(c client.Client, ns string) ([]string, []meshv1alpha1.ObjectReference, error) {
	cn := &meshv1alpha1.Canary{}
	rp := &meshv1alpha1.ResiliencePolicy{}
	ep := &meshv1alpha1.EgressPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, cn); err != nil {
		return nil, nil, err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "egress"}, ep); err != nil {
		return nil, nil, err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, rp); err != nil {
		return nil, nil, err
	}
	var out []string
	var inv []meshv1alpha1.ObjectReference
	add := func(pre string, refs []meshv1alpha1.ObjectReference) {
		for _, r := range refs {
			g := "core"
			if strings.Contains(r.APIVersion, "/") {
				g = strings.Split(r.APIVersion, "/")[0]
			}
			if g == "apps" || (pre == "cn" && g == "core") {
				continue // the Canary's primary and Services, in either mesh
			}
			if r.Kind != "Service" {
				inv = append(inv, r)
			}
			if g := pre + ":" + g; !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	add("cn", cn.Status.Inventory)
	add("rp", rp.Status.Inventory)
	add("eg", ep.Status.Inventory)
	slices.Sort(out)
	return out, inv, nil
}

var routedFor = map[string][]string{"Istio": {istioCanary, istioRP, istioEG}, "Linkerd": {linkerdCanary, linkerdRP, linkerdEG, linkerdEGRoute}}

// playRoutedMove stands in for the deployment controller (every
// Deployment of names becomes Available, except failing's once restarted
// with the stamp prefix failStamp) and watches the Canary's and the
// policy's outputs as playMeshMove does.
func playRoutedMove(c client.Client, names []string, failing, failStamp string, bad, both *sync.Map, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		for _, n := range names {
			ns := nsOrNil(c, n)
			g, _, err := routedGroupsOf(c, n)
			if ns == nil || err != nil {
				continue
			}
			checkRouted(n, ns, g, bad, both)
			var list appsv1.DeploymentList
			if c.List(ctx, &list, client.InNamespace(n)) != nil {
				continue
			}
			for i := range list.Items {
				d := &list.Items[i]
				if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas > 0 {
					continue
				}
				if n == failing && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], failStamp) {
					continue
				}
				markAvailable(c, d)
			}
		}
	}
}

// checkRouted notes in bad a namespace labelled for a mesh without its
// outputs, or in a move without the old mesh's; in both one seen with
// both meshes' outputs. Before the Canary first routes there is nothing
// to check.
func checkRouted(n string, ns *corev1.Namespace, g []string, bad, both *sync.Map) {
	if !slices.Contains(g, linkerdCanary) && !slices.Contains(g, istioCanary) {
		return
	}
	if hasAll(g, append(slices.Clone(routedFor["Istio"]), routedFor["Linkerd"]...)...) {
		both.Store(n, true)
	}
	if ns.Labels["istio-injection"] != "" && !hasAll(g, routedFor["Istio"]...) {
		bad.Store(n+"/istio", fmt.Sprintf("labelled for Istio with outputs %v", g))
	}
	if ns.Annotations["linkerd.io/inject"] != "" && !hasAll(g, routedFor["Linkerd"]...) {
		bad.Store(n+"/linkerd", fmt.Sprintf("annotated for Linkerd with outputs %v", g))
	}
	if from := ns.Annotations["meshplane.io/migrating-from"]; from != "" && !hasAll(g, routedFor[from]...) {
		bad.Store(n+"/from", fmt.Sprintf("in a move with outputs %v: %s's gone before the gate", g, from))
	}
}

// TestMigrateCanaryAndResilience moves two Linkerd namespaces, each with
// a routing Canary, a standalone ResiliencePolicy and an EgressPolicy, to
// Istio in waves of one, with their controllers running. Both
// meshes' outputs exist before a namespace is relabelled, and a watcher
// fails the test if a namespace ever carries a mesh's label without its
// outputs, or loses the old mesh's before its move ended. cr-1 passes its
// gate: only Istio's outputs remain (the Service's Linkerd annotations
// restored). cr-2 fails it: its Istio outputs are pruned and its Linkerd
// outputs are the very same objects (UIDs) as before the move.
func TestMigrateCanaryAndResilience(t *testing.T) {
	cfg := env.Cfg(t)
	m := testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup, canary.Setup, resiliencepolicy.Setup, egresspolicy.Setup)
	c := m.Client
	readyInstall(t, c, "lk-cr", meshv1alpha1.ProviderLinkerd, "")
	readyInstall(t, c, "is-cr", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileSidecar)
	names := []string{"cr-1", "cr-2"}
	for _, n := range names {
		routedApp(t, c, n, map[string]string{"linkerd.io/inject": "enabled"})
	}
	stop := make(chan struct{})
	defer close(stop)
	var bad, both sync.Map
	go playRoutedMove(c, names, "cr-2", "adoption-cr-to-istio@", &bad, &both, stop)
	var before map[string]types.UID
	testenv.Eventually(t, 30*time.Second, "Linkerd outputs", func() error {
		for _, n := range names {
			g, inv, err := routedGroupsOf(c, n)
			if err != nil || !slices.Equal(g, sorted(routedFor["Linkerd"])) {
				return fmt.Errorf("%s: %v %v", n, g, err)
			}
			if n == "cr-2" {
				if before, err = uids(c, inv); err != nil {
					return err
				}
			}
		}
		return nil
	})
	svcBefore := service(t, c, "cr-2", "db").Annotations

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "cr-to-istio"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "is-cr"},
			Namespaces: names, Waves: meshv1alpha1.AdoptionWaves{Size: 1, HealthTimeout: &metav1.Duration{Duration: 4 * time.Second}}}}
	start := time.Now()
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, ma.Name, "held by cr-2's failed gate", 60*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason)
	})
	t.Logf("two waves (one passed, one moved back after a 4 s health timeout) in %v", time.Since(start).Round(10*time.Millisecond))
	if w := got.Status.Waves; len(w) != 2 || w[0].Phase != meshv1alpha1.WaveEnrolled || w[1].Phase != meshv1alpha1.WaveMovedBack {
		t.Fatalf("waves: %+v", w)
	}
	testenv.Eventually(t, 20*time.Second, "cr-1 on Istio only, cr-2 on Linkerd only", func() error {
		if g, _, err := routedGroupsOf(c, "cr-1"); err != nil || !slices.Equal(g, sorted(routedFor["Istio"])) {
			return fmt.Errorf("cr-1: %v %v", g, err)
		}
		if g, _, err := routedGroupsOf(c, "cr-2"); err != nil || !slices.Equal(g, sorted(routedFor["Linkerd"])) {
			return fmt.Errorf("cr-2: %v %v", g, err)
		}
		if a := service(t, c, "cr-1", "db").Annotations; hasLinkerdKey(a) {
			return fmt.Errorf("cr-1's Service db keeps Linkerd's annotations %v", a)
		}
		return nil
	})
	bad.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	for _, n := range names {
		if _, ok := both.Load(n); !ok {
			t.Errorf("%s: both meshes' outputs were never seen together", n)
		}
	}
	_, inv2, err := routedGroupsOf(c, "cr-2")
	testenv.Must(t, err)
	if after, err := uids(c, inv2); err != nil || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("cr-2's Linkerd outputs were replaced: before %v, after %v (%v)", before, after, err)
	}
	if after := service(t, c, "cr-2", "db").Annotations; fmt.Sprint(after) != fmt.Sprint(svcBefore) {
		t.Errorf("cr-2's Service db annotations changed: before %v, after %v", svcBefore, after)
	}
}

func hasLinkerdKey(m map[string]string) bool {
	for k := range m {
		if strings.Contains(k, "linkerd.io/") {
			return true
		}
	}
	return false
}

func service(t *testing.T, c client.Client, ns, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s))
	return &s
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
