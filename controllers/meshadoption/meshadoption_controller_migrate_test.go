package meshadoption_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshadoption"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/testenv"
)

// l7Policy allows GET from frontend: an L7 rule, which ambient enforces
// only at a waypoint.
func l7Policy(ns string) *meshv1alpha1.ZeroTrustPolicy {
	return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
			From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}},
		}}}}
}

// l4Policy allows port 8080 from frontend: ztunnel enforces it.
func l4Policy(ns string) *meshv1alpha1.ZeroTrustPolicy {
	p := l7Policy(ns)
	p.Spec.Rules[0].To[0].Methods = nil
	return p
}

// TestMigrateSidecarToAmbient moves three Istio sidecar namespaces to
// ambient in waves of two. mg-1's policy has an L7 rule: the wave creates
// its waypoint first and labels the namespace (ambient and use-waypoint)
// only once the waypoint is programmed. mg-2's policy is L4: no waypoint.
// mg-3's workload never becomes Ready in ambient: its wave is moved back
// (sidecar labels restored, its waypoint deleted, workloads restarted).
func TestMigrateSidecarToAmbient(t *testing.T) {
	cfg := env.Cfg(t)
	// The policy controller writes the ambient outputs the wave waits for
	// before it restarts the workloads.
	m := testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup, zerotrustpolicy.Setup)
	c := m.Client
	readyInstall(t, c, "istio-mig", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileAmbient)
	names := []string{"mg-1", "mg-2", "mg-3"}
	for _, n := range names {
		app(t, c, n, map[string]string{"istio-injection": "enabled"})
	}
	testenv.Must(t, c.Create(ctx, l7Policy("mg-1")))
	testenv.Must(t, c.Create(ctx, l4Policy("mg-2")))
	testenv.Must(t, c.Create(ctx, l7Policy("mg-3")))
	stop := make(chan struct{})
	defer close(stop)
	var bad sync.Map
	go playMigration(c, names, "mg-3", &bad, stop)

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "to-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-mig"}, Mode: meshv1alpha1.ProfileAmbient,
			Namespaces: names, Waves: meshv1alpha1.AdoptionWaves{Size: 2, HealthTimeout: &metav1.Duration{Duration: 4 * time.Second}}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, ma.Name, "held by the failed gate", 40*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason)
	})
	bad.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	w1, w2 := got.Status.Waves[0], got.Status.Waves[1]
	if w1.Phase != meshv1alpha1.WaveEnrolled || !slices.Equal(w1.Waypoints, []string{"mg-1"}) ||
		w2.Phase != meshv1alpha1.WaveMovedBack || !slices.Equal(w2.Waypoints, []string{"mg-3"}) {
		t.Fatalf("waves: %+v", got.Status.Waves)
	}
	want := map[string]map[string]string{
		"mg-1": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"},
		"mg-2": {"istio.io/dataplane-mode": "ambient"},
		"mg-3": {"istio-injection": "enabled"},
	}
	for n, l := range want {
		ns := nsOf(t, c, n)
		delete(ns.Labels, "kubernetes.io/metadata.name")
		if !maps.Equal(ns.Labels, l) {
			t.Errorf("%s labels %v, want %v", n, ns.Labels, l)
		}
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "mg-1", Name: "waypoint"}, &gatewayv1.Gateway{}); err != nil {
		t.Fatalf("mg-1's waypoint: %v", err)
	}
	for _, n := range []string{"mg-2", "mg-3"} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: n, Name: "waypoint"}, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s has a waypoint: %v", n, err)
		}
	}
	if v := deployment(t, c, "mg-3").Spec.Template.Annotations[upgrade.DataPlaneAnnotation]; !strings.HasPrefix(v, "adoption-to-ambient-back@") {
		t.Fatalf("mg-3 not restarted back: %q", v)
	}
}

// TestMigrationRefused: a namespace whose policy runs in Audit cannot move
// to ambient (ambient cannot audit), even with a waypoint: the wave does
// not start, the message names the object and why, and nothing is
// labelled or created.
func TestMigrationRefused(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client
	readyInstall(t, c, "istio-mig-ref", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileAmbient)
	app(t, c, "mr-1", map[string]string{"istio-injection": "enabled"})
	p := l4Policy("mr-1")
	p.Spec.Enforcement = meshv1alpha1.EnforcementAudit
	testenv.Must(t, c.Create(ctx, p))
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "refused-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-mig-ref"}, Mode: meshv1alpha1.ProfileAmbient,
			Namespaces: []string{"mr-1"}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, ma.Name, "refused", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.UnsupportedFeatureReason)
	})
	msg := apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.StalledCondition).Message
	for _, want := range []string{
		"the next wave cannot start: MeshInstall istio-mig-ref (label istio.io/dataplane-mode=ambient) cannot express ZeroTrustPolicy mr-1/web: spec.enforcement is Audit but namespace mr-1 is ambient",
		"nothing was labelled",
	} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q lacks %q", msg, want)
		}
	}
	if len(got.Status.Waves) != 0 {
		t.Fatalf("a wave was recorded: %+v", got.Status.Waves)
	}
	if ns := nsOf(t, c, "mr-1"); ns.Labels["istio-injection"] != "enabled" || ns.Labels["istio.io/dataplane-mode"] != "" || len(ns.Annotations) != 0 {
		t.Fatalf("mr-1 touched: %v %v", ns.Labels, ns.Annotations)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "mr-1", Name: "waypoint"}, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a waypoint was created: %v", err)
	}
}

// playMigration stands in for the deployment controller (every restarted
// Deployment becomes Available, except failing's while it is ambient) and
// for istiod programming waypoints (after 300ms); it notes a namespace
// labelled with use-waypoint before its waypoint was programmed.
func playMigration(c client.Client, names []string, failing string, bad *sync.Map, stop chan struct{}) {
	seen := map[string]time.Time{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		for _, n := range names {
			g := &gatewayv1.Gateway{}
			programmed := false
			if c.Get(ctx, client.ObjectKey{Namespace: n, Name: "waypoint"}, g) == nil {
				if _, ok := seen[n]; !ok {
					seen[n] = time.Now()
				}
				programmed = apimeta.IsStatusConditionTrue(g.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))
				if !programmed && time.Since(seen[n]) > 300*time.Millisecond {
					apimeta.SetStatusCondition(&g.Status.Conditions, metav1.Condition{Type: string(gatewayv1.GatewayConditionProgrammed),
						Status: metav1.ConditionTrue, Reason: "Programmed", Message: "ok", ObservedGeneration: g.Generation})
					_ = c.Status().Update(ctx, g)
				}
			}
			if ns := nsOrNil(c, n); ns != nil && ns.Labels["istio.io/use-waypoint"] != "" && !programmed {
				bad.Store(n, fmt.Sprintf("labelled use-waypoint=%s before its waypoint was programmed", ns.Labels["istio.io/use-waypoint"]))
			}
			d := deploymentOrNil(c, n)
			if d == nil || d.Status.ObservedGeneration == d.Generation {
				continue
			}
			if n == failing && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], "adoption-to-ambient@") {
				continue
			}
			markAvailable(c, d)
		}
	}
}

func nsOrNil(c client.Client, name string) *corev1.Namespace {
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return nil
	}
	return &ns
}
