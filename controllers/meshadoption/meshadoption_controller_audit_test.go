package meshadoption_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/test/fakeprom"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestAuditPromotion enrols two namespaces in waves of one with a 2s audit
// window against a scripted metrics server. Before a namespace is labelled
// its ZeroTrustPolicy is held in Audit (the namespace annotation, then the
// policy's status.auditHeldBy); the first wave has no would-be denials and
// is promoted (hold released); the second counts 3 and holds the adoption
// with the policy still in Audit and the count in status. With no denials
// and a spec change the wave is audited again and promoted. The policies'
// specs are never written.
func TestAuditPromotion(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client
	prom := fakeprom.Start(t)
	readyInstall(t, c, "istio-audit", meshv1alpha1.ProviderIstio, "")
	names := []string{"pa-1", "pa-2"}
	for _, n := range names {
		app(t, c, n, nil)
		testenv.Must(t, c.Create(ctx, ztp(n)))
	}
	prom.Set(`namespace="pa-1"`, 0)
	prom.Set(`namespace="pa-2"`, 3)
	var failing atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go playDeploymentController(c, names, &failing, stop)
	var labelledBeforeHold atomic.Value
	go playPolicyController(c, names, &labelledBeforeHold, stop)

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "audit"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-audit"}, Namespaces: names,
			Waves: meshv1alpha1.AdoptionWaves{Size: 1, HealthTimeout: &metav1.Duration{Duration: 20 * time.Second},
				Audit: &meshv1alpha1.AdoptionAudit{Window: metav1.Duration{Duration: 2 * time.Second},
					MetricsServer: meshv1alpha1.MetricsServer{Address: prom.URL}}}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, "audit", "held by would-be denials", 40*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.WouldBeDeniedReason)
	})
	if v := labelledBeforeHold.Load(); v != nil {
		t.Fatalf("a namespace was labelled before its policy ran in Audit: %v", v)
	}
	w1, w2 := got.Status.Waves[0], got.Status.Waves[1]
	if got.Status.Phase != meshv1alpha1.AdoptionHeld || w1.Phase != meshv1alpha1.WaveEnrolled || w1.PromotionTime == nil ||
		w1.WouldBeDenied == nil || *w1.WouldBeDenied != 0 || w2.Phase != meshv1alpha1.WaveAuditing || w2.WouldBeDenied == nil || *w2.WouldBeDenied != 3 {
		t.Fatalf("waves: %+v", got.Status.Waves)
	}
	msg := apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.StalledCondition).Message
	if !strings.Contains(msg, "wave 2 [pa-2]: 3 request(s) would have been denied after") || !strings.Contains(msg, "(pa-2: 3); the ZeroTrustPolicies stay in Audit") {
		t.Fatalf("Stalled message: %s", msg)
	}
	if a := nsOf(t, c, "pa-1").Annotations[mesh.AuditHoldAnnotation]; a != "" {
		t.Fatalf("pa-1 still held after promotion: %q", a)
	}
	if a := nsOf(t, c, "pa-2").Annotations[mesh.AuditHoldAnnotation]; a != "audit" {
		t.Fatalf("pa-2 not held while its wave is held: %q", a)
	}
	var q []string
	for _, s := range prom.Queries() {
		if strings.Contains(s, "pa-1") {
			q = append(q, s)
		}
	}
	if len(q) == 0 || !strings.Contains(q[0], `rbac_istio_dry_run_(allow|deny)_shadow_denied",namespace="pa-1"}[`) {
		t.Fatalf("the built-in Istio query was not sent: %v", q)
	}

	// No denials any more, and a spec change: audited again, promoted.
	prom.Set(`namespace="pa-2"`, 0)
	for _, paused := range []bool{true, false} {
		testenv.Must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(ctx, client.ObjectKey{Name: "audit"}, got); err != nil {
				return err
			}
			got.Spec.Paused = paused
			return c.Update(ctx, got)
		}))
	}
	got = waitAdoption(t, c, "audit", "Ready", 30*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.ReadyCondition, "True", "")
	})
	if w := got.Status.Waves[1]; w.Phase != meshv1alpha1.WaveEnrolled || w.PromotionTime == nil || *w.WouldBeDenied != 0 {
		t.Fatalf("wave 2 after the retry: %+v", w)
	}
	for _, n := range names {
		if a := nsOf(t, c, n).Annotations[mesh.AuditHoldAnnotation]; a != "" {
			t.Fatalf("%s still held: %q", n, a)
		}
		var p meshv1alpha1.ZeroTrustPolicy
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: n, Name: "policy"}, &p))
		if p.Generation != 1 || p.Spec.Enforcement != "" {
			t.Fatalf("%s: the policy's spec was written: generation %d, enforcement %q", n, p.Generation, p.Spec.Enforcement)
		}
	}
}

// TestAuditRefusedInAmbient: Istio ambient cannot run a policy in Audit,
// so an ambient adoption with spec.waves.audit is refused and labels
// nothing.
func TestAuditRefusedInAmbient(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client
	readyInstall(t, c, "istio-amb-audit", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileAmbient)
	app(t, c, "paa-1", nil)
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "audit-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-amb-audit"}, Namespaces: []string{"paa-1"},
			Waves: meshv1alpha1.AdoptionWaves{Audit: &meshv1alpha1.AdoptionAudit{Window: metav1.Duration{Duration: time.Minute},
				MetricsServer: meshv1alpha1.MetricsServer{Address: "http://127.0.0.1:1"}}}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, ma.Name, "Stalled", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.UnsupportedFeatureReason)
	})
	want := "spec.waves.audit: Istio ambient cannot run a ZeroTrustPolicy in Audit"
	if msg := apimeta.FindStatusCondition(got.Status.Conditions, meshv1alpha1.StalledCondition).Message; !strings.HasPrefix(msg, want) {
		t.Fatalf("message %q, want %q", msg, want)
	}
	if ns := nsOf(t, c, "paa-1"); len(ns.Annotations) != 0 || len(ns.Labels) > 1 {
		t.Fatalf("a refused adoption touched paa-1: %v %v", ns.Labels, ns.Annotations)
	}
}

func ztp(ns string) *meshv1alpha1.ZeroTrustPolicy {
	return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "policy", Namespace: ns}}
}

// playPolicyController stands in for the ZeroTrustPolicy controller (not
// running here): it reports the namespace's audit hold in status, and
// notes a namespace labelled for the mesh while its policy did not yet
// report the hold.
func playPolicyController(c client.Client, names []string, bad *atomic.Value, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		for _, n := range names {
			var ns corev1.Namespace
			if c.Get(ctx, client.ObjectKey{Name: n}, &ns) != nil {
				continue
			}
			var p meshv1alpha1.ZeroTrustPolicy
			if c.Get(ctx, client.ObjectKey{Namespace: n, Name: "policy"}, &p) != nil {
				continue
			}
			if ns.Labels["istio-injection"] == "enabled" && ns.Annotations[mesh.AuditHoldAnnotation] != "" && p.Status.AuditHeldBy == "" {
				bad.Store(fmt.Sprintf("%s labelled while its policy enforces", n))
			}
			if p.Status.AuditHeldBy != ns.Annotations[mesh.AuditHoldAnnotation] || p.Status.ObservedGeneration != p.Generation {
				p.Status.AuditHeldBy, p.Status.ObservedGeneration = ns.Annotations[mesh.AuditHoldAnnotation], p.Generation
				_ = c.Status().Update(ctx, &p)
			}
		}
	}
}
