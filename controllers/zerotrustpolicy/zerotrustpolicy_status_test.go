package zerotrustpolicy

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestSetStatus(t *testing.T) {
	inv := []meshv1alpha1.ObjectReference{{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication", Namespace: "shop", Name: "web"},
		{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy", Namespace: "shop", Name: "web"}}
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	for _, tc := range []struct {
		name      string
		prior     func(*meshv1alpha1.ZeroTrustPolicy)
		out       result
		err       error
		conds     string
		mode      string
		inventory int
		provider  meshv1alpha1.Provider
		observed  bool
	}{
		{name: "Ready", out: result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			conds: "Ready=True/Succeeded", mode: "Strict/Deny", inventory: 2, provider: meshv1alpha1.ProviderIstio, observed: true},
		{name: "held by a BreakGlass: nothing else changes",
			prior: func(p *meshv1alpha1.ZeroTrustPolicy) {
				p.Status.Provider, p.Status.Inventory = meshv1alpha1.ProviderIstio, inv
			},
			out:   result{heldBy: bg},
			conds: "BreakGlassActive=True/BreakGlassActive Ready=False/BreakGlassActive", inventory: 2, provider: meshv1alpha1.ProviderIstio, observed: true},
		{name: "released: BreakGlassActive removed",
			prior: func(p *meshv1alpha1.ZeroTrustPolicy) { incident.MarkHeld(&p.Status.CommonStatus, 1, bg, heldMessage) },
			out:   result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			conds: "Ready=True/Succeeded", mode: "Strict/Deny", inventory: 2, provider: meshv1alpha1.ProviderIstio, observed: true},
		{name: "unsupported feature: Stalled, provider recorded",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderIstio, Features: []mesh.Capability{mesh.CapPerWorkloadMTLSMode}},
			conds: "Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", provider: meshv1alpha1.ProviderIstio, observed: true},
		{name: "namespace-wide policy held by another: Stalled Conflict",
			out:   result{provider: meshv1alpha1.ProviderLinkerd},
			err:   outcome.Stalled(meshv1alpha1.ConflictReason, "namespace shop already has Linkerd policy from ZeroTrustPolicy web"),
			conds: "Stalled=True/Conflict Ready=False/Conflict", provider: meshv1alpha1.ProviderLinkerd, observed: true},
		{name: "no mesh: Stalled",
			err:   outcome.Stalled(meshv1alpha1.ProviderNotResolvedReason, "no mesh serves namespace shop"),
			conds: "Stalled=True/ProviderNotResolved Ready=False/ProviderNotResolved", observed: true},
		{name: "transient: Reconciling ApplyFailed, generation not observed",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   errors.New("connection refused"),
			conds: "Reconciling=True/ApplyFailed Ready=False/ApplyFailed", provider: meshv1alpha1.ProviderIstio},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy("shop", "web")
			p.Generation = 1
			if tc.prior != nil {
				tc.prior(p)
			}
			sum := setStatus(p, tc.out, tc.err)
			status.Summarize(p, sum, tc.err, meshv1alpha1.ApplyFailedReason)
			if got := testenv.Conditions(&p.Status.CommonStatus); got != tc.conds {
				t.Errorf("conditions %s, want %s", got, tc.conds)
			}
			if p.Status.Mode != tc.mode || len(p.Status.Inventory) != tc.inventory || p.Status.Provider != tc.provider {
				t.Errorf("mode %q inventory %d provider %q, want %q %d %q", p.Status.Mode, len(p.Status.Inventory), p.Status.Provider, tc.mode, tc.inventory, tc.provider)
			}
			if observed := p.Status.ObservedGeneration == 1; observed != tc.observed {
				t.Errorf("observedGeneration %d, want observed=%v", p.Status.ObservedGeneration, tc.observed)
			}
		})
	}
}

func TestMode(t *testing.T) {
	for _, tc := range []struct {
		spec meshv1alpha1.ZeroTrustPolicySpec
		want string
	}{
		{meshv1alpha1.ZeroTrustPolicySpec{}, "Strict/Deny"},
		{meshv1alpha1.ZeroTrustPolicySpec{MTLS: &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}, DefaultAction: meshv1alpha1.ActionAllow}, "Permissive/Allow"},
	} {
		if got := Mode(&tc.spec); got != tc.want {
			t.Errorf("Mode = %s, want %s", got, tc.want)
		}
	}
}
