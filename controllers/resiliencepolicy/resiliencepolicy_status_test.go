package resiliencepolicy

import (
	"errors"
	"strings"
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
	inv := []meshv1alpha1.ObjectReference{{APIVersion: "networking.istio.io/v1", Kind: "DestinationRule", Namespace: "shop", Name: "web"}}
	applied := apply.Result{Inventory: inv}
	report := []meshv1alpha1.FieldSupport{{Field: "retries.attempts", Provider: meshv1alpha1.ProviderIstio, State: meshv1alpha1.FieldEnforced}}
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	for _, tc := range []struct {
		name  string
		prior func(*meshv1alpha1.ResiliencePolicy)
		out   result
		err   error
		// want: the conditions after setStatus and status.Summarize, a
		// piece of the Ready message, the inventory and report lengths.
		conds, msg        string
		inventory, report int
		observed          bool
	}{
		{name: "Ready", out: result{provider: meshv1alpha1.ProviderIstio, applied: applied, support: report},
			conds: "Ready=True/Succeeded", msg: "1 output(s) applied for Istio", inventory: 1, report: 1, observed: true},
		{name: "Ready, composed with a split", out: result{provider: meshv1alpha1.ProviderIstio, applied: applied, support: report, composedWith: "web"},
			conds: "Ready=True/Succeeded", msg: "carried by the route of TrafficSplit web", inventory: 1, report: 1, observed: true},
		{name: "relaxed by a BreakGlass", out: result{provider: meshv1alpha1.ProviderIstio, applied: applied, support: report, relaxedBy: bg},
			conds: "BreakGlassActive=True/BreakGlassActive Ready=False/BreakGlassActive", msg: "fault injection, rate limits and outlier ejection are lifted",
			inventory: 1, report: 1, observed: true},
		{name: "released: BreakGlassActive removed",
			prior: func(rp *meshv1alpha1.ResiliencePolicy) { incident.MarkHeld(&rp.Status.CommonStatus, 1, bg, "lifted") },
			out:   result{provider: meshv1alpha1.ProviderIstio, applied: applied},
			conds: "Ready=True/Succeeded", msg: "applied", inventory: 1, observed: true},
		{name: "a refused field: Stalled, the report kept, the previous inventory kept",
			prior: func(rp *meshv1alpha1.ResiliencePolicy) { rp.Status.Inventory = inv },
			out:   result{provider: meshv1alpha1.ProviderIstio, support: report},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderIstio, Features: []mesh.Capability{mesh.Capability(mesh.RFSuccessRate)}},
			conds: "Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", msg: "outlierDetection.successRate", inventory: 1, report: 1, observed: true},
		{name: "a conflict", out: result{provider: meshv1alpha1.ProviderIstio}, err: outcome.Conflict("Service web already has ResiliencePolicy first"),
			conds: "Stalled=True/Conflict Ready=False/Conflict", msg: "already has ResiliencePolicy first", observed: true},
		{name: "transient: Reconciling ApplyFailed, generation not observed", out: result{provider: meshv1alpha1.ProviderIstio},
			err: errors.New("connection refused"), conds: "Reconciling=True/ApplyFailed Ready=False/ApplyFailed", msg: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := policy("shop", "web")
			rp.Generation = 1
			if tc.prior != nil {
				tc.prior(rp)
			}
			sum := setStatus(rp, tc.out, tc.err)
			status.Summarize(rp, sum, tc.err, meshv1alpha1.ApplyFailedReason)
			if got := testenv.Conditions(&rp.Status.CommonStatus); got != tc.conds {
				t.Errorf("conditions %s, want %s", got, tc.conds)
			}
			if ready := status.Get(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition); ready == nil || !strings.Contains(ready.Message, tc.msg) {
				t.Errorf("Ready %+v, want a message with %q", ready, tc.msg)
			}
			if len(rp.Status.Inventory) != tc.inventory || len(rp.Status.Support) != tc.report {
				t.Errorf("inventory %d report %d, want %d %d", len(rp.Status.Inventory), len(rp.Status.Support), tc.inventory, tc.report)
			}
			if observed := rp.Status.ObservedGeneration == 1; observed != tc.observed {
				t.Errorf("observedGeneration %d, want observed=%v", rp.Status.ObservedGeneration, tc.observed)
			}
		})
	}
}
