package trafficsplit

import (
	"errors"
	"testing"
	"time"

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
	inv := []meshv1alpha1.ObjectReference{{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: "shop", Name: "web"}}
	applied := apply.Result{Inventory: inv}
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	missing := outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "Service shop/web-v3 does not exist")
	for _, tc := range []struct {
		name string
		// prior status, if any
		prior func(*meshv1alpha1.TrafficSplit)
		out   result
		err   error
		// want: the conditions after setStatus and status.Summarize, the
		// weights and the inventory length.
		conds     string
		weights   string
		inventory int
		observed  bool
	}{
		{name: "Ready", out: result{provider: meshv1alpha1.ProviderIstio, refsResolved: true, applied: applied},
			conds: "ResolvedRefs=True/Succeeded Ready=True/Succeeded", weights: "web-v1=90,web-v2=10", inventory: 1, observed: true},
		{name: "held by a BreakGlass: pinned to the stable backend",
			out:   result{provider: meshv1alpha1.ProviderIstio, refsResolved: true, applied: applied, pinnedBy: bg},
			conds: "ResolvedRefs=True/Succeeded BreakGlassActive=True/BreakGlassActive Ready=False/BreakGlassActive", weights: "web-v1=100", inventory: 1, observed: true},
		{name: "released: BreakGlassActive removed",
			prior: func(ts *meshv1alpha1.TrafficSplit) {
				incident.MarkHeld(&ts.Status.CommonStatus, 1, bg, "pinned")
			},
			out:   result{provider: meshv1alpha1.ProviderIstio, refsResolved: true, applied: applied},
			conds: "Ready=True/Succeeded ResolvedRefs=True/Succeeded", weights: "web-v1=90,web-v2=10", inventory: 1, observed: true},
		{name: "a missing Service: ResolvedRefs False, Stalled", out: result{provider: meshv1alpha1.ProviderIstio, refErr: missing}, err: missing,
			conds: "ResolvedRefs=False/ReferenceNotFound Stalled=True/ReferenceNotFound Ready=False/ReferenceNotFound", observed: true},
		{name: "unsupported feature: Stalled, references resolved",
			out:   result{provider: meshv1alpha1.ProviderLinkerd, refsResolved: true},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd, Features: []mesh.Capability{mesh.CapMirroring}},
			conds: "ResolvedRefs=True/Succeeded Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", observed: true},
		{name: "a conflict: Stalled Conflict",
			out:   result{provider: meshv1alpha1.ProviderLinkerd, refsResolved: true},
			err:   &apply.ConflictError{Kind: "HTTPRoute", Namespace: "shop", Name: "web"},
			conds: "ResolvedRefs=True/Succeeded Stalled=True/Conflict Ready=False/Conflict", observed: true},
		{name: "no mesh: Stalled before the references are checked",
			err:   outcome.Stalled(meshv1alpha1.ProviderNotResolvedReason, "no mesh serves namespace shop"),
			conds: "Stalled=True/ProviderNotResolved Ready=False/ProviderNotResolved", observed: true},
		{name: "transient: Reconciling ApplyFailed, generation not observed",
			out:   result{provider: meshv1alpha1.ProviderIstio, refsResolved: true},
			err:   errors.New("connection refused"),
			conds: "ResolvedRefs=True/Succeeded Reconciling=True/ApplyFailed Ready=False/ApplyFailed"},
		{name: "waiting: Reconciling with the wait's reason",
			err:   outcome.Wait("Waiting", time.Second, "waiting"),
			conds: "Reconciling=True/Waiting Ready=False/Waiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := split("shop", "web")
			ts.Generation = 1
			if tc.prior != nil {
				tc.prior(ts)
			}
			sum := setStatus(ts, tc.out, tc.err)
			status.Summarize(ts, sum, tc.err, meshv1alpha1.ApplyFailedReason)
			if got := testenv.Conditions(&ts.Status.CommonStatus); got != tc.conds {
				t.Errorf("conditions %s, want %s", got, tc.conds)
			}
			if ts.Status.Weights != tc.weights || len(ts.Status.Inventory) != tc.inventory {
				t.Errorf("weights %q inventory %d, want %q %d", ts.Status.Weights, len(ts.Status.Inventory), tc.weights, tc.inventory)
			}
			if observed := ts.Status.ObservedGeneration == 1; observed != tc.observed {
				t.Errorf("observedGeneration %d, want observed=%v", ts.Status.ObservedGeneration, tc.observed)
			}
			if tc.out.provider != "" && ts.Status.Provider != tc.out.provider {
				t.Errorf("provider %s", ts.Status.Provider)
			}
		})
	}
}
