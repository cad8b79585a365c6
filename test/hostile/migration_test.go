package hostile

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Migration and promotion cases (issue 21, deliverables 2 and 3):
// spec.waves.audit values the API server refuses, an audit window in a
// mode that cannot audit, and a sidecar → ambient wave whose namespace
// holds an object ambient cannot express. Each refusal leaves the
// namespaces and their outputs exactly as they were.

func init() {
	long := strings.Repeat("x", 4097)
	specs := []struct {
		name, value string
		want        []string
	}{
		{"audit window 0s", "{audit: {window: 0s, metricsServer: {address: 'http://127.0.0.1:9090'}}}",
			[]string{"spec.waves.audit.window", "audit.window must be between 1s and 720h; got 0s"}},
		{"audit window of 31 days", "{audit: {window: 744h, metricsServer: {address: 'http://127.0.0.1:9090'}}}",
			[]string{"spec.waves.audit.window", "audit.window must be between 1s and 720h; got 744h"}},
		{"audit window banana", "{audit: {window: banana, metricsServer: {address: 'http://127.0.0.1:9090'}}}",
			[]string{"spec.waves.audit.window", `audit.window "banana" is not a duration`}},
		{"audit without a window", "{audit: {metricsServer: {address: 'http://127.0.0.1:9090'}}}",
			[]string{"spec.waves.audit.window", "Required value"}},
		{"audit without a metrics server", "{audit: {window: 1h}}",
			[]string{"spec.waves.audit.metricsServer", "Required value"}},
		{"audit metrics server not http", "{audit: {window: 1h, metricsServer: {address: 'ftp://127.0.0.1:9090'}}}",
			[]string{"spec.waves.audit.metricsServer.address", "should match"}},
		{"audit metrics server with a secretRef", "{audit: {window: 1h, metricsServer: {address: 'http://127.0.0.1:9090', secretRef: {name: prom}}}}",
			[]string{"spec.waves.audit", "audit.metricsServer.secretRef is not supported on a cluster-scoped MeshAdoption"}},
		{"audit query of 4097 characters", "{audit: {window: 1h, metricsServer: {address: 'http://127.0.0.1:9090'}, query: " + long + "}}",
			[]string{"spec.waves.audit.query", "may not be more than 4096"}},
	}
	for _, s := range specs {
		Register(Case{Category: "spec", Kind: "MeshAdoption", Mesh: AnyMesh, Name: s.name, Run: func(h *H) {
			ns := h.Namespace(AnyMesh)
			before := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			h.Refused(adoptionObject(h, adoptionName(h), ns, "waves", s.value), s.want...)
			h.Unchanged(before)
		}})
	}
	Register(
		// Isolated: an Ambient MeshInstall claims the cluster's Istio
		// namespaces. Suspended, so nothing is installed.
		Case{Category: "capability", Kind: "MeshAdoption", Mesh: Istio, Isolated: true, Name: "sidecar to ambient with a policy in Audit",
			Run: func(h *H) {
				h.StartManager()
				suspendedAmbient(h, "istio-amb")
				ns := h.Namespace(Istio)
				p := GoodZeroTrustPolicy(ns, "audited", Istio)
				p.Spec.Enforcement = meshv1alpha1.EnforcementAudit
				h.Create(p)
				h.Ready(p)
				before, inv := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}), h.Inventory(ns)
				ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
					Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-amb"},
						Mode: meshv1alpha1.ProfileAmbient, Namespaces: []string{ns}}}
				h.Create(ma)
				h.Stalled(ma, meshv1alpha1.UnsupportedFeatureReason,
					"the next wave cannot start: MeshInstall istio-amb (label istio.io/dataplane-mode=ambient) cannot express ZeroTrustPolicy "+ns+
						"/audited: spec.enforcement is Audit but namespace "+ns+" is ambient",
					"nothing was labelled")
				h.Unchanged(before)
				h.Same(ns, inv)
				h.Ready(p)
			}},
		Case{Category: "capability", Kind: "MeshAdoption", Mesh: Istio, Isolated: true, Name: "audit window on ambient",
			Run: func(h *H) {
				h.StartManager()
				suspendedAmbient(h, "istio-amb")
				ns := h.Namespace(Istio)
				p := GoodZeroTrustPolicy(ns, "enforced", Istio)
				h.Create(p)
				h.Ready(p)
				before, inv := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}), h.Inventory(ns)
				ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: adoptionName(h)},
					Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-amb"},
						Mode: meshv1alpha1.ProfileAmbient, Namespaces: []string{ns},
						Waves: meshv1alpha1.AdoptionWaves{Audit: &meshv1alpha1.AdoptionAudit{Window: metav1.Duration{Duration: 3600e9},
							MetricsServer: meshv1alpha1.MetricsServer{Address: "http://127.0.0.1:9"}}}}}
				h.Create(ma)
				h.Stalled(ma, meshv1alpha1.UnsupportedFeatureReason,
					"spec.waves.audit: Istio ambient cannot run a ZeroTrustPolicy in Audit", "audit the namespaces in sidecar mode first, or remove spec.waves.audit")
				h.Unchanged(before)
				h.Same(ns, inv)
				h.Ready(p)
			}},
	)
}

// suspendedAmbient creates a suspended Istio MeshInstall with profile
// Ambient (nothing is installed; its profile is what the adoption reads).
func suspendedAmbient(h *H, name string) {
	h.Helper()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient, Suspend: true}}
	h.Create(mi)
	h.Cleanup(func() { _ = h.C.Delete(h.Ctx, mi) })
}
