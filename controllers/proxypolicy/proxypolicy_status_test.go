package proxypolicy

import (
	"errors"
	"testing"

	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestSetStatus(t *testing.T) {
	inv := []meshv1alpha1.ObjectReference{ref("web"), {APIVersion: "networking.istio.io/v1", Kind: "Sidecar", Namespace: "shop", Name: "web-proxy"}}
	applied := []meshv1alpha1.ProxyWorkloadStatus{{Kind: "Deployment", Name: "web", State: meshv1alpha1.ProxyWorkloadApplied}}
	pending := []meshv1alpha1.ProxyWorkloadStatus{{Kind: "Deployment", Name: "web", State: meshv1alpha1.ProxyWorkloadPending}}
	for _, tc := range []struct {
		name      string
		rollout   *meshv1alpha1.ProxyRollout
		out       result
		err       error
		conds     string
		message   string
		inventory int
		observed  bool
	}{
		{name: "Ready", out: result{provider: meshv1alpha1.ProviderIstio, owned: 1, applied: apply.Result{Inventory: inv}, rollout: rolloutPlan{states: applied}},
			conds: "Ready=True/Succeeded", message: "Istio: 1 output(s), proxy settings on 1 workload(s); changed pod templates roll out by each workload's update strategy",
			inventory: 2, observed: true},
		{name: "paused with pending workloads: Reconciling RolloutPaused at the generation", rollout: &meshv1alpha1.ProxyRollout{Paused: true},
			out:   result{provider: meshv1alpha1.ProviderIstio, rollout: rolloutPlan{states: pending, pending: 1}},
			conds: "Reconciling=True/RolloutPaused Ready=False/RolloutPaused", observed: true},
		{name: "batch gate waiting: Reconciling Progressing", rollout: &meshv1alpha1.ProxyRollout{BatchSize: ptr.To[int32](1)},
			out:   result{provider: meshv1alpha1.ProviderIstio, rollout: rolloutPlan{states: pending, pending: 1, waitingFor: "Deployment a: rolling"}},
			conds: "Reconciling=True/Progressing Ready=False/Progressing"},
		{name: "unsupported feature: Stalled",
			out:   result{provider: meshv1alpha1.ProviderCilium},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderCilium, Features: []mesh.Capability{mesh.CapProxyResources}},
			conds: "Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", observed: true},
		{name: "conflict: Stalled Conflict",
			out:   result{provider: meshv1alpha1.ProviderIstio},
			err:   outcome.Conflict("Deployment shop/web: annotation applied by team-gitops"),
			conds: "Stalled=True/Conflict Ready=False/Conflict", observed: true},
		{name: "failed apply keeps what it wrote",
			out:   result{provider: meshv1alpha1.ProviderIstio, applied: apply.Result{Inventory: inv}},
			err:   errors.New("connection refused"),
			conds: "Reconciling=True/ApplyFailed Ready=False/ApplyFailed", inventory: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy("shop", "web", "web")
			p.Spec.Rollout = tc.rollout
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
