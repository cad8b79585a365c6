package egresspolicy

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
	inv := []meshv1alpha1.ObjectReference{{APIVersion: "networking.istio.io/v1", Kind: "ServiceEntry", Namespace: "shop", Name: "web-api"},
		{APIVersion: "networking.istio.io/v1", Kind: "Sidecar", Namespace: "shop", Name: "web"}}
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "partner API moved"}}
	for _, tc := range []struct {
		name      string
		prior     func(*meshv1alpha1.EgressPolicy)
		out       result
		err       error
		conds     string
		message   string
		mode      string
		inventory int
		observed  bool
	}{
		{name: "Ready", out: result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			conds: "Ready=True/Succeeded", message: "2 output(s) applied for Istio: AllowList of 1 rule(s); every other external destination is blocked",
			mode: "AllowList", inventory: 2, observed: true},
		{name: "held by a BreakGlass: inventory kept",
			prior: func(p *meshv1alpha1.EgressPolicy) { p.Status.Inventory = inv },
			out:   result{heldBy: bg},
			conds: "BreakGlassActive=True/BreakGlassActive Ready=False/BreakGlassActive", inventory: 2, observed: true},
		{name: "released: BreakGlassActive removed",
			prior: func(p *meshv1alpha1.EgressPolicy) { incident.MarkHeld(&p.Status.CommonStatus, 1, bg, heldMessage) },
			out:   result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			conds: "Ready=True/Succeeded", mode: "AllowList", inventory: 2, observed: true},
		{name: "unsupported feature: Stalled, previous inventory kept",
			prior: func(p *meshv1alpha1.EgressPolicy) { p.Status.Inventory = inv },
			out:   result{provider: meshv1alpha1.ProviderCilium},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderCilium, Features: []mesh.Capability{mesh.CapEgressAudit}},
			conds: "Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", inventory: 2, observed: true},
		{name: "overlap: Stalled Conflict",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   outcome.Conflict("EgressPolicy first already controls the egress of these workloads"),
			conds: "Stalled=True/Conflict Ready=False/Conflict", observed: true},
		{name: "transient: Reconciling ApplyFailed, generation not observed",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   errors.New("connection refused"),
			conds: "Reconciling=True/ApplyFailed Ready=False/ApplyFailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := egress("shop", "web")
			p.Generation = 1
			if tc.prior != nil {
				tc.prior(p)
			}
			sum := setStatus(p, tc.out, tc.err)
			status.Summarize(p, sum, tc.err, meshv1alpha1.ApplyFailedReason)
			if got := testenv.Conditions(&p.Status.CommonStatus); got != tc.conds {
				t.Errorf("conditions %s, want %s", got, tc.conds)
			}
			if r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition); tc.message != "" && r.Message != tc.message {
				t.Errorf("message %q, want %q", r.Message, tc.message)
			}
			if p.Status.Mode != tc.mode || len(p.Status.Inventory) != tc.inventory {
				t.Errorf("mode %q inventory %d, want %q %d", p.Status.Mode, len(p.Status.Inventory), tc.mode, tc.inventory)
			}
			if observed := p.Status.ObservedGeneration == 1; observed != tc.observed {
				t.Errorf("observedGeneration %d, want observed=%v", p.Status.ObservedGeneration, tc.observed)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	audit := egress("shop", "web").Spec
	audit.Mode = meshv1alpha1.EgressAudit
	if got := Describe(&audit); got != "Audit of 1 rule(s); nothing is blocked" {
		t.Errorf("Describe = %s", got)
	}
}
