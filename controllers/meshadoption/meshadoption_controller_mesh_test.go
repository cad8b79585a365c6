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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshadoption"
	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/testenv"
)

// meshApp is app plus what the namespace's objects route and protect:
// Services web, web-v1 and web-v2 (port 8080), TrafficSplit web and
// ZeroTrustPolicy web (L4).
func meshApp(t *testing.T, c client.Client, name string, annotations map[string]string) {
	t.Helper()
	testenv.Must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}))
	d := deploymentSpec(name)
	testenv.Must(t, c.Create(ctx, d))
	testenv.MarkAvailable(t, c, name)
	for _, s := range []string{"web", "web-v1", "web-v2"} {
		testenv.Must(t, c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s, Namespace: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}))
	}
	testenv.Must(t, c.Create(ctx, &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: name},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}))
	testenv.Must(t, c.Create(ctx, l4Policy(name)))
}

// groupsOf returns the API groups of the outputs of ns's TrafficSplit
// and ZeroTrustPolicy, from their inventories ("ts:<group>", "ztp:<group>";
// core objects left out), and the inventories.
func groupsOf(c client.Client, ns string) ([]string, []meshv1alpha1.ObjectReference, error) {
	ts := &meshv1alpha1.TrafficSplit{}
	p := &meshv1alpha1.ZeroTrustPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, ts); err != nil {
		return nil, nil, err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, p); err != nil {
		return nil, nil, err
	}
	var out []string
	for pre, inv := range map[string][]meshv1alpha1.ObjectReference{"ts": ts.Status.Inventory, "ztp": p.Status.Inventory} {
		for _, r := range inv {
			if !strings.Contains(r.APIVersion, "/") {
				continue // a shared core object (the namespace), not a mesh's kind
			}
			g := pre + ":" + strings.Split(r.APIVersion, "/")[0]
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out, append(slices.Clone(ts.Status.Inventory), p.Status.Inventory...), nil
}

const (
	linkerdRoute  = "ts:gateway.networking.k8s.io"
	linkerdPolicy = "ztp:policy.linkerd.io"
	istioRoute    = "ts:networking.istio.io"
	istioPolicy   = "ztp:security.istio.io"
)

// groupsFor are each mesh's output groups.
var groupsFor = map[string][]string{"Istio": {istioRoute, istioPolicy}, "Linkerd": {linkerdRoute, linkerdPolicy}}

// hasAll reports whether groups holds every one of want.
func hasAll(groups []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(groups, w) {
			return false
		}
	}
	return true
}

// uids reads the UIDs of the inventory's objects. An inventory is recorded
// before its objects are written (a shared field's previous value must
// survive a crash), so an object may not exist yet: the caller retries.
func uids(c client.Client, inv []meshv1alpha1.ObjectReference) (map[string]types.UID, error) {
	out := map[string]types.UID{}
	for _, r := range inv {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
		if err := c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, u); err != nil {
			return nil, err
		}
		out[r.Kind+"/"+r.Name] = u.GetUID()
	}
	return out, nil
}

// TestMigrateLinkerdToIstio moves two Linkerd namespaces to Istio (sidecar)
// in waves of one, with the TrafficSplit and ZeroTrustPolicy controllers
// running. Before a namespace is relabelled both meshes' outputs exist; a
// watcher fails the test if a namespace ever carries Istio's label without
// Istio's outputs, or lacks Linkerd's outputs before its move ended. lx-1
// passes its gate: its Linkerd outputs are pruned, the migration
// annotations removed. lx-2's workload never becomes Ready on Istio: its
// wave is moved back (linkerd.io/inject restored, the Istio label and the
// migration annotations removed, workloads restarted), its Istio outputs
// pruned and its Linkerd outputs the very same objects as before.
func TestMigrateLinkerdToIstio(t *testing.T) {
	cfg := env.Cfg(t)
	m := testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup, trafficsplit.Setup, zerotrustpolicy.Setup)
	c := m.Client
	readyInstall(t, c, "lk-from", meshv1alpha1.ProviderLinkerd, "")
	readyInstall(t, c, "is-to", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileSidecar)
	names := []string{"lx-1", "lx-2"}
	for _, n := range names {
		meshApp(t, c, n, map[string]string{"linkerd.io/inject": "enabled"})
	}
	testenv.Eventually(t, 20*time.Second, "Linkerd outputs", func() error {
		for _, n := range names {
			if g, _, err := groupsOf(c, n); err != nil || !slices.Equal(g, []string{linkerdRoute, linkerdPolicy}) {
				return fmt.Errorf("%s: %v %v", n, g, err)
			}
		}
		return nil
	})
	var inv2 []meshv1alpha1.ObjectReference
	var before map[string]types.UID
	testenv.Eventually(t, 20*time.Second, "lx-2's Linkerd outputs written", func() (err error) {
		if _, inv2, err = groupsOf(c, "lx-2"); err != nil {
			return err
		}
		before, err = uids(c, inv2)
		return err
	})

	stop := make(chan struct{})
	defer close(stop)
	var bad, both sync.Map
	go playMeshMove(c, names, "lx-2", "adoption-lk-to-istio@", &bad, &both, stop)

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "lk-to-istio"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "is-to"},
			Namespaces: names, Waves: meshv1alpha1.AdoptionWaves{Size: 1, HealthTimeout: &metav1.Duration{Duration: 4 * time.Second}}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, ma.Name, "held by lx-2's failed gate", 40*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason)
	})
	if w := got.Status.Waves; len(w) != 2 || w[0].Phase != meshv1alpha1.WaveEnrolled || w[1].Phase != meshv1alpha1.WaveMovedBack {
		t.Fatalf("waves: %+v", w)
	}
	testenv.Eventually(t, 20*time.Second, "lx-1 on Istio only, lx-2 on Linkerd only", func() error {
		if g, _, err := groupsOf(c, "lx-1"); err != nil || !slices.Equal(g, []string{istioRoute, istioPolicy}) {
			return fmt.Errorf("lx-1: %v %v", g, err)
		}
		if g, _, err := groupsOf(c, "lx-2"); err != nil || !slices.Equal(g, []string{linkerdRoute, linkerdPolicy}) {
			return fmt.Errorf("lx-2: %v %v", g, err)
		}
		return nil
	})
	bad.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	for _, n := range names {
		if _, ok := both.Load(n); !ok {
			t.Errorf("%s: both meshes' outputs were never seen together", n)
		}
	}
	ns1, ns2 := nsOf(t, c, "lx-1"), nsOf(t, c, "lx-2")
	if ns1.Labels["istio-injection"] != "enabled" || hasAny(ns1.Annotations, "linkerd.io/inject", "meshplane.io/migrating-from", "meshplane.io/migrating-to") {
		t.Errorf("lx-1: labels %v annotations %v", ns1.Labels, ns1.Annotations)
	}
	if strings.Contains(ns1.Annotations["meshplane.io/adoption-prior"], "migrating") {
		t.Errorf("lx-1's record still lists the migration annotations: %s", ns1.Annotations["meshplane.io/adoption-prior"])
	}
	if ns2.Annotations["linkerd.io/inject"] != "enabled" || ns2.Labels["istio-injection"] != "" ||
		hasAny(ns2.Annotations, "meshplane.io/migrating-from", "meshplane.io/migrating-to", "meshplane.io/adoption", "meshplane.io/adoption-prior") {
		t.Errorf("lx-2 not restored exactly: labels %v annotations %v", ns2.Labels, ns2.Annotations)
	}
	_, inv2, err := groupsOf(c, "lx-2")
	testenv.Must(t, err)
	if after, err := uids(c, inv2); err != nil || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("lx-2's Linkerd outputs were replaced: before %v, after %v", before, after)
	}
	if v := deployment(t, c, "lx-2").Spec.Template.Annotations[upgrade.DataPlaneAnnotation]; !strings.HasPrefix(v, "adoption-lk-to-istio-back@") {
		t.Errorf("lx-2 not restarted back: %q", v)
	}
}

func hasAny(m map[string]string, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// playMeshMove stands in for the deployment controller (every restarted
// Deployment becomes Available, except failing's on the stamp prefix
// failStamp) and watches the outputs: a namespace labelled for a mesh
// without its outputs, or in a move without the old mesh's, is noted in
// bad; a namespace seen with both in both.
func playMeshMove(c client.Client, names []string, failing, failStamp string, bad, both *sync.Map, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		for _, n := range names {
			ns := nsOrNil(c, n)
			g, _, err := groupsOf(c, n)
			if ns == nil || err != nil {
				continue
			}
			if hasAll(g, linkerdRoute, linkerdPolicy, istioRoute, istioPolicy) {
				both.Store(n, true)
			}
			if ns.Labels["istio-injection"] != "" && !hasAll(g, istioRoute, istioPolicy) {
				bad.Store(n+"/istio", fmt.Sprintf("labelled for Istio with outputs %v", g))
			}
			if ns.Annotations["linkerd.io/inject"] != "" && !hasAll(g, linkerdRoute, linkerdPolicy) {
				bad.Store(n+"/linkerd", fmt.Sprintf("annotated for Linkerd with outputs %v", g))
			}
			if from := ns.Annotations["meshplane.io/migrating-from"]; from != "" && !hasAll(g, groupsFor[from]...) {
				bad.Store(n+"/from", fmt.Sprintf("in a move with outputs %v: %s's gone before the gate", g, from))
			}
			d := deploymentOrNil(c, n)
			if d == nil || d.Status.ObservedGeneration == d.Generation {
				continue
			}
			if n == failing && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], failStamp) {
				continue
			}
			markAvailable(c, d)
		}
	}
}

// deploymentSpec is app's Deployment web in ns.
func deploymentSpec(ns string) *appsv1.Deployment {
	one := int32(1)
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}}}}}
}

// TestMigrateIstioToLinkerd moves an Istio sidecar namespace to Linkerd:
// Linkerd's outputs exist before the switch, the Istio labels are removed
// and linkerd.io/inject set in one patch, and once the wave passed its
// gate Istio's outputs are pruned.
func TestMigrateIstioToLinkerd(t *testing.T) {
	cfg := env.Cfg(t)
	m := testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup, trafficsplit.Setup, zerotrustpolicy.Setup)
	c := m.Client
	readyInstall(t, c, "is-from", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileSidecar)
	readyInstall(t, c, "lk-to", meshv1alpha1.ProviderLinkerd, "")
	meshApp(t, c, "il-1", nil)
	ns := nsOf(t, c, "il-1")
	ns.Labels["istio-injection"] = "enabled"
	testenv.Must(t, c.Update(ctx, ns))
	testenv.Eventually(t, 20*time.Second, "Istio outputs", func() error {
		if g, _, err := groupsOf(c, "il-1"); err != nil || !slices.Equal(g, []string{istioRoute, istioPolicy}) {
			return fmt.Errorf("%v %v", g, err)
		}
		return nil
	})
	stop := make(chan struct{})
	defer close(stop)
	var bad, both sync.Map
	go playMeshMove(c, []string{"il-1"}, "", "", &bad, &both, stop)
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "is-to-linkerd"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "lk-to"}, Namespaces: []string{"il-1"}}}
	testenv.Must(t, c.Create(ctx, ma))
	waitAdoption(t, c, ma.Name, "completed", 30*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		if ma.Status.Phase != meshv1alpha1.AdoptionCompleted {
			return fmt.Errorf("phase %s: %v", ma.Status.Phase, ma.Status.Conditions)
		}
		return condIs(ma, meshv1alpha1.ReadyCondition, "True", "")
	})
	testenv.Eventually(t, 20*time.Second, "Linkerd outputs only", func() error {
		if g, _, err := groupsOf(c, "il-1"); err != nil || !slices.Equal(g, []string{linkerdRoute, linkerdPolicy}) {
			return fmt.Errorf("%v %v", g, err)
		}
		return nil
	})
	bad.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	if _, ok := both.Load("il-1"); !ok {
		t.Errorf("both meshes' outputs were never seen together")
	}
	got := nsOf(t, c, "il-1")
	if got.Annotations["linkerd.io/inject"] != "enabled" || hasAny(got.Labels, "istio-injection", "istio.io/rev") ||
		hasAny(got.Annotations, "meshplane.io/migrating-from", "meshplane.io/migrating-to") {
		t.Errorf("il-1: labels %v annotations %v", got.Labels, got.Annotations)
	}
}

// TestDeleteMidMove deletes an adoption while its wave has switched a
// Linkerd namespace to Istio but its workloads have not restarted: the
// migration annotations go with the record, and the controllers keep only
// the outputs of the mesh the labels select (Istio).
func TestDeleteMidMove(t *testing.T) {
	cfg := env.Cfg(t)
	m := testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup, trafficsplit.Setup, zerotrustpolicy.Setup)
	c := m.Client
	readyInstall(t, c, "lk-del", meshv1alpha1.ProviderLinkerd, "")
	readyInstall(t, c, "is-del", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileSidecar)
	meshApp(t, c, "ld-1", map[string]string{"linkerd.io/inject": "enabled"})
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "lk-del"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "is-del"}, Namespaces: []string{"ld-1"}}}
	testenv.Must(t, c.Create(ctx, ma))
	// Nothing marks the restarted Deployment Available: the wave stays in
	// flight after the switch.
	testenv.Eventually(t, 20*time.Second, "switched with both meshes' outputs", func() error {
		ns := nsOf(t, c, "ld-1")
		g, _, err := groupsOf(c, "ld-1")
		if err != nil || ns.Labels["istio-injection"] != "enabled" || !hasAll(g, istioRoute, istioPolicy, linkerdRoute, linkerdPolicy) {
			return fmt.Errorf("labels %v outputs %v %v", ns.Labels, g, err)
		}
		return nil
	})
	testenv.Must(t, c.Delete(ctx, ma))
	testenv.Eventually(t, 20*time.Second, "Istio's outputs only, no migration annotations", func() error {
		ns := nsOf(t, c, "ld-1")
		if hasAny(ns.Annotations, "meshplane.io/migrating-from", "meshplane.io/migrating-to", "meshplane.io/adoption", "meshplane.io/adoption-prior") {
			return fmt.Errorf("annotations %v", ns.Annotations)
		}
		if g, _, err := groupsOf(c, "ld-1"); err != nil || !slices.Equal(g, []string{istioRoute, istioPolicy}) {
			return fmt.Errorf("outputs %v %v", g, err)
		}
		return nil
	})
}
