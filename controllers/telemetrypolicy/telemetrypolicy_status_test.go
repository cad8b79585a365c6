package telemetrypolicy

import (
	"errors"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestSetStatus(t *testing.T) {
	inv := []meshv1alpha1.ObjectReference{{APIVersion: "telemetry.istio.io/v1", Kind: "Telemetry", Namespace: "shop", Name: "web"}}
	for _, tc := range []struct {
		name      string
		out       result
		err       error
		conds     string
		message   string
		inventory int
		observed  bool
	}{
		{name: "Ready", out: result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			conds: "Ready=True/Succeeded", message: "1 output(s) applied for Istio", inventory: 1, observed: true},
		{name: "Ready with a delayed effect", out: result{provider: meshv1alpha1.ProviderLinkerd, applied: apply.Result{Inventory: inv}, effect: "restart pods"},
			conds: "Ready=True/Succeeded", message: "1 output(s) applied for Linkerd; restart pods", inventory: 1, observed: true},
		{name: "unsupported feature: Stalled",
			out:   result{provider: meshv1alpha1.ProviderCilium},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderCilium, Features: []mesh.Capability{mesh.CapTracing}},
			conds: "Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", observed: true},
		{name: "conflict: Stalled Conflict",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   outcome.Conflict("TelemetryPolicy web already configures telemetry"),
			conds: "Stalled=True/Conflict Ready=False/Conflict", observed: true},
		{name: "transient: Reconciling ApplyFailed, generation not observed",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   errors.New("connection refused"),
			conds: "Reconciling=True/ApplyFailed Ready=False/ApplyFailed"},
		{name: "failed apply keeps what it wrote",
			out:   result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			err:   errors.New("connection refused"),
			conds: "Reconciling=True/ApplyFailed Ready=False/ApplyFailed", inventory: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy("shop", "web", true)
			p.Generation = 1
			sum := setStatus(p, tc.out, tc.err)
			status.Summarize(p, sum, tc.err, meshv1alpha1.ApplyFailedReason)
			if got := testenv.Conditions(&p.Status.CommonStatus); got != tc.conds {
				t.Errorf("conditions %s, want %s", got, tc.conds)
			}
			if r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition); tc.message != "" && r.Message != tc.message {
				t.Errorf("message %q, want %q", r.Message, tc.message)
			}
			if len(p.Status.Inventory) != tc.inventory || p.Status.Provider != tc.out.provider {
				t.Errorf("inventory %d provider %q", len(p.Status.Inventory), p.Status.Provider)
			}
			if observed := p.Status.ObservedGeneration == 1; observed != tc.observed {
				t.Errorf("observedGeneration %d, want observed=%v", p.Status.ObservedGeneration, tc.observed)
			}
		})
	}
}
