// Package gitops tests Meshplane's GitOps surface: the Argo CD health checks
// in config/argocd, run with gopher-lua over status objects built from the
// API types, each compared with Flux's kstatus checker.
package gitops

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
)

func cond(t, s, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(s), Reason: reason, Message: msg, LastTransitionTime: metav1.Now(), ObservedGeneration: 2}
}

var (
	ready       = cond(meshv1alpha1.ReadyCondition, "True", meshv1alpha1.SucceededReason, "Applied")
	notReady    = cond(meshv1alpha1.ReadyCondition, "False", meshv1alpha1.ProgressingReason, "Working")
	reconciling = cond(meshv1alpha1.ReconcilingCondition, "True", meshv1alpha1.ProgressingReason, "Applying outputs")
	stalled     = cond(meshv1alpha1.StalledCondition, "True", meshv1alpha1.UnsupportedFeatureReason, "Linkerd cannot express mirroring")
	readyFalse  = cond(meshv1alpha1.ReadyCondition, "False", meshv1alpha1.UnsupportedFeatureReason, "Linkerd cannot express mirroring")
)

// fixture is one object and the health both checkers must report.
type fixture struct {
	name string
	obj  runtime.Object
	// want is the Argo CD health status.
	want string
	// msg must appear in the Argo CD message.
	msg string
	// kstatusDiffers explains a deliberate difference from kstatus (Argo CD
	// has Suspended; kstatus has no such state).
	kstatusDiffers string
}

func meta(name, ns string, gen int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Generation: gen}
}

func common(gen int64, conds ...metav1.Condition) meshv1alpha1.CommonStatus {
	return meshv1alpha1.CommonStatus{ObservedGeneration: gen, Conditions: conds}
}

func fixtures() map[string][]fixture {
	mi := func(gen, observed int64, suspend bool, up *meshv1alpha1.UpgradeStatus, conds ...metav1.Condition) *meshv1alpha1.MeshInstall {
		return &meshv1alpha1.MeshInstall{ObjectMeta: meta("istio", "", gen),
			Spec:   meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Suspend: suspend},
			Status: meshv1alpha1.MeshInstallStatus{CommonStatus: common(observed, conds...), Upgrade: up}}
	}
	ts := func(gen, observed int64, weights string, conds ...metav1.Condition) *meshv1alpha1.TrafficSplit {
		return &meshv1alpha1.TrafficSplit{ObjectMeta: meta("reviews", "shop", gen),
			Status: meshv1alpha1.TrafficSplitStatus{CommonStatus: common(observed, conds...), Weights: weights}}
	}
	egp := func(mode string, conds ...metav1.Condition) *meshv1alpha1.EgressPolicy {
		return &meshv1alpha1.EgressPolicy{ObjectMeta: meta("payments", "shop", 2),
			Status: meshv1alpha1.EgressPolicyStatus{CommonStatus: common(2, conds...), Mode: mode}}
	}
	pxp := func(paused bool, state meshv1alpha1.ProxyWorkloadState, conds ...metav1.Condition) *meshv1alpha1.ProxyPolicy {
		p := &meshv1alpha1.ProxyPolicy{ObjectMeta: meta("proxies", "shop", 2),
			Spec:   meshv1alpha1.ProxyPolicySpec{Rollout: &meshv1alpha1.ProxyRollout{Paused: paused}},
			Status: meshv1alpha1.ProxyPolicyStatus{CommonStatus: common(2, conds...), Provider: meshv1alpha1.ProviderIstio}}
		if state != "" {
			p.Status.Workloads = []meshv1alpha1.ProxyWorkloadStatus{{Kind: "Deployment", Name: "web", State: state}}
		}
		return p
	}
	ztp := func(mode string, conds ...metav1.Condition) *meshv1alpha1.ZeroTrustPolicy {
		return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: meta("reviews", "shop", 2),
			Status: meshv1alpha1.ZeroTrustPolicyStatus{CommonStatus: common(2, conds...), Mode: mode}}
	}
	telemetry := func(p meshv1alpha1.Provider, conds ...metav1.Condition) *meshv1alpha1.TelemetryPolicy {
		return &meshv1alpha1.TelemetryPolicy{ObjectMeta: meta("shop", "shop", 2),
			Status: meshv1alpha1.TelemetryPolicyStatus{CommonStatus: common(2, conds...), Provider: p}}
	}
	rev := func(phase string, conds ...metav1.Condition) *meshv1alpha1.MeshRevision {
		return &meshv1alpha1.MeshRevision{ObjectMeta: meta("1-29-0", "", 2),
			Status: meshv1alpha1.MeshRevisionStatus{CommonStatus: common(2, conds...), Phase: meshv1alpha1.MeshRevisionPhase(phase), NamespaceCount: 3, PodCount: 12}}
	}
	can := func(suspend bool, phase meshv1alpha1.CanaryPhase, weight int32, conds ...metav1.Condition) *meshv1alpha1.Canary {
		return &meshv1alpha1.Canary{ObjectMeta: meta("podinfo", "shop", 2), Spec: meshv1alpha1.CanarySpec{Suspend: suspend},
			Status: meshv1alpha1.CanaryStatus{CommonStatus: common(2, conds...), Phase: phase, CanaryWeight: weight, FailedChecks: 3, Message: "request-success-rate 97 < 99"}}
	}
	fed := func(rot meshv1alpha1.RotationPhase, conds ...metav1.Condition) *meshv1alpha1.MeshFederation {
		return &meshv1alpha1.MeshFederation{ObjectMeta: meta("global", "", 2),
			Status: meshv1alpha1.MeshFederationStatus{CommonStatus: common(2, conds...), ReadyClusters: "2/3", Rotation: &meshv1alpha1.RotationStatus{Phase: rot}}}
	}
	bg := func(phase meshv1alpha1.BreakGlassPhase, conds ...metav1.Condition) *meshv1alpha1.BreakGlass {
		return &meshv1alpha1.BreakGlass{ObjectMeta: meta("incident-4711", "", 1), Spec: meshv1alpha1.BreakGlassSpec{Reason: "INC-4711"},
			Status: meshv1alpha1.BreakGlassStatus{CommonStatus: common(1, conds...), Phase: phase, Touched: meshv1alpha1.BreakGlassCounts{Namespaces: 500}}}
	}
	adopt := func(phase meshv1alpha1.MeshAdoptionPhase, conds ...metav1.Condition) *meshv1alpha1.MeshAdoption {
		return &meshv1alpha1.MeshAdoption{ObjectMeta: meta("onboard", "", 2),
			Status: meshv1alpha1.MeshAdoptionStatus{CommonStatus: common(2, conds...), Phase: phase, TotalNamespaces: 10, EnrolledNamespaces: 3}}
	}
	bgActive := cond(meshv1alpha1.BreakGlassActiveCondition, "True", meshv1alpha1.BreakGlassActiveReason, "BreakGlass incident-4711")
	upgrading := &meshv1alpha1.UpgradeStatus{Phase: "Migrating", FromVersion: "1.28.1", ToVersion: "1.29.0", TotalNamespaces: 10, MigratedNamespaces: 4}
	return map[string][]fixture{
		"MeshInstall": {
			{name: "no status yet", obj: mi(1, 0, false, nil), want: "Progressing", msg: "Waiting for Meshplane",
				kstatusDiffers: "kstatus calls an object without status.observedGeneration Current; Argo CD should wait for the first reconcile"},
			{name: "generation not observed", obj: mi(3, 2, false, nil, ready), want: "Progressing", msg: "Generation 3 not observed"},
			{name: "ready", obj: mi(2, 2, false, nil, ready, cond(meshv1alpha1.ReconcilingCondition, "False", meshv1alpha1.SucceededReason, "")), want: "Healthy"},
			{name: "installing", obj: mi(2, 2, false, nil, notReady, reconciling), want: "Progressing", msg: "Applying outputs"},
			{name: "stalled", obj: mi(2, 2, false, nil, readyFalse, stalled), want: "Degraded", msg: "cannot express"},
			{name: "not ready", obj: mi(2, 2, false, nil, notReady), want: "Progressing"},
			{name: "upgrading", obj: mi(2, 2, false, upgrading, notReady, reconciling), want: "Progressing", msg: "4/10 namespaces migrated"},
			{name: "upgrade failed", obj: mi(2, 2, false, &meshv1alpha1.UpgradeStatus{Phase: "Failed", FromVersion: "1.28.1", ToVersion: "1.29.0"},
				readyFalse, cond(meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason, "batch 2 failed its health gate")), want: "Degraded", msg: "health gate"},
			{name: "upgrade paused", obj: mi(2, 2, false, &meshv1alpha1.UpgradeStatus{Phase: "Paused"}, ready), want: "Suspended",
				kstatusDiffers: "Argo CD's Suspended has no kstatus counterpart"},
			{name: "suspended", obj: mi(2, 2, true, nil, ready), want: "Suspended", kstatusDiffers: "Argo CD's Suspended has no kstatus counterpart"},
			{name: "break glass active", obj: mi(2, 2, false, nil, ready, bgActive), want: "Healthy", msg: "Break glass active"},
		},
		"MeshRevision": {
			{name: "ready", obj: rev("InUse", ready), want: "Healthy", msg: "3 namespaces, 12 pods"},
			{name: "installing", obj: rev("Installing", notReady, reconciling), want: "Progressing"},
			{name: "failed", obj: rev("Failed", readyFalse, stalled), want: "Degraded"},
		},
		"TrafficSplit": {
			{name: "ready", obj: ts(1, 1, "reviews-v1=90,reviews-v2=10", ready), want: "Healthy", msg: "reviews-v2=10"},
			{name: "stale", obj: ts(2, 1, "", ready), want: "Progressing"},
			{name: "unsupported feature", obj: ts(1, 1, "", readyFalse, stalled), want: "Degraded", msg: "Linkerd cannot express mirroring"},
			{name: "break glass", obj: ts(1, 1, "reviews-v1=100", ready, bgActive), want: "Healthy", msg: "Break glass active"},
			{name: "no conditions", obj: ts(1, 1, ""), want: "Healthy"},
		},
		"EgressPolicy": {
			{name: "ready", obj: egp("AllowList", ready), want: "Healthy", msg: "Egress AllowList"},
			{name: "applying", obj: egp("", notReady, reconciling), want: "Progressing"},
			{name: "unsupported", obj: egp("", readyFalse, stalled), want: "Degraded"},
		},
		"IngressGateway": {
			{name: "programmed", obj: &meshv1alpha1.IngressGateway{ObjectMeta: meta("web", "shop", 2),
				Status: meshv1alpha1.IngressGatewayStatus{CommonStatus: common(2, ready), GatewayClassName: "istio", BackendMTLS: meshv1alpha1.BackendMTLSYes}},
				want: "Healthy", msg: "Class istio, backend mTLS Yes"},
			{name: "waiting to be programmed", obj: &meshv1alpha1.IngressGateway{ObjectMeta: meta("web", "shop", 2),
				Status: meshv1alpha1.IngressGatewayStatus{CommonStatus: common(2, notReady, reconciling), GatewayClassName: "istio"}}, want: "Progressing"},
			{name: "class missing", obj: &meshv1alpha1.IngressGateway{ObjectMeta: meta("web", "shop", 2),
				Status: meshv1alpha1.IngressGatewayStatus{CommonStatus: common(2, readyFalse, stalled)}}, want: "Degraded"},
		},
		"ZeroTrustPolicy": {
			{name: "ready", obj: ztp("Strict", ready), want: "Healthy", msg: "mTLS Strict"},
			{name: "applying", obj: ztp("", notReady, reconciling), want: "Progressing"},
			{name: "stalled", obj: ztp("", readyFalse, stalled), want: "Degraded"},
		},
		"TelemetryPolicy": {
			{name: "ready", obj: telemetry(meshv1alpha1.ProviderIstio, ready), want: "Healthy", msg: "Telemetry on Istio"},
			{name: "applying", obj: telemetry("", notReady, reconciling), want: "Progressing"},
			{name: "stalled", obj: telemetry(meshv1alpha1.ProviderCilium, readyFalse, stalled), want: "Degraded"},
		},
		"ProxyPolicy": {
			{name: "ready", obj: pxp(false, meshv1alpha1.ProxyWorkloadApplied, ready), want: "Healthy", msg: "Proxy settings on Istio"},
			{name: "rolling out in batches", obj: pxp(false, meshv1alpha1.ProxyWorkloadPending, notReady, reconciling), want: "Progressing"},
			{name: "refused", obj: pxp(false, "", readyFalse, stalled), want: "Degraded"},
			{name: "paused", obj: pxp(true, meshv1alpha1.ProxyWorkloadPending, notReady,
				cond(meshv1alpha1.ReconcilingCondition, "True", meshv1alpha1.RolloutPausedReason, "paused")), want: "Suspended", msg: "1 workload(s) pending",
				kstatusDiffers: "Argo CD's Suspended has no kstatus counterpart"},
		},
		"ResiliencePolicy": {
			{name: "ready", obj: &meshv1alpha1.ResiliencePolicy{ObjectMeta: meta("reviews", "shop", 1),
				Status: meshv1alpha1.ResiliencePolicyStatus{CommonStatus: common(1, ready), ComposedWith: "reviews"}}, want: "Healthy", msg: "Composed with TrafficSplit reviews"},
			{name: "stale", obj: &meshv1alpha1.ResiliencePolicy{ObjectMeta: meta("reviews", "shop", 2),
				Status: meshv1alpha1.ResiliencePolicyStatus{CommonStatus: common(1, ready)}}, want: "Progressing"},
			{name: "refused field", obj: &meshv1alpha1.ResiliencePolicy{ObjectMeta: meta("reviews", "shop", 1),
				Status: meshv1alpha1.ResiliencePolicyStatus{CommonStatus: common(1, readyFalse, stalled)}}, want: "Degraded"},
		},
		"Canary": {
			{name: "initialized", obj: can(false, meshv1alpha1.CanaryPhaseInitialized, 0, ready), want: "Healthy"},
			{name: "progressing", obj: can(false, meshv1alpha1.CanaryPhaseProgressing, 25, notReady, reconciling), want: "Progressing", msg: "canary weight 25%"},
			{name: "rolled back", obj: can(false, meshv1alpha1.CanaryPhaseFailed, 0, readyFalse,
				cond(meshv1alpha1.StalledCondition, "True", meshv1alpha1.AnalysisFailedReason, "rolled back")), want: "Degraded", msg: "request-success-rate"},
			{name: "waiting for promotion", obj: can(false, meshv1alpha1.CanaryPhaseWaitingPromotion, 50, ready), want: "Suspended",
				kstatusDiffers: "Argo CD's Suspended has no kstatus counterpart"},
			{name: "suspended", obj: can(true, meshv1alpha1.CanaryPhaseSucceeded, 0, ready), want: "Suspended", kstatusDiffers: "Argo CD's Suspended has no kstatus counterpart"},
			{name: "succeeded", obj: can(false, meshv1alpha1.CanaryPhaseSucceeded, 0, ready), want: "Healthy"},
		},
		"MeshFederation": {
			{name: "ready", obj: fed(meshv1alpha1.RotationIdle, ready), want: "Healthy", msg: "2/3"},
			{name: "rotating", obj: fed(meshv1alpha1.RotationWaitingForWorkloads, notReady, reconciling, cond(meshv1alpha1.RotatingCondition, "True", meshv1alpha1.ProgressingReason, "")), want: "Progressing", msg: "WaitingForWorkloads"},
			{name: "cluster unreachable", obj: fed(meshv1alpha1.RotationIdle, readyFalse,
				cond(meshv1alpha1.StalledCondition, "True", meshv1alpha1.ClusterUnreachableReason, "cluster east does not answer")), want: "Degraded", msg: "east"},
		},
		"MeshAdoption": {
			{name: "completed", obj: adopt(meshv1alpha1.AdoptionCompleted, ready), want: "Healthy", msg: "3 of 10 namespaces enrolled"},
			{name: "enrolling", obj: adopt(meshv1alpha1.AdoptionEnrolling, notReady, reconciling), want: "Progressing", msg: "Adoption Enrolling"},
			{name: "held", obj: adopt(meshv1alpha1.AdoptionHeld, readyFalse, cond(meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason, "wave 2 failed its health gate")),
				want: "Degraded", msg: "wave 2 failed"},
		},
		"BreakGlass": {
			{name: "engaged", obj: bg(meshv1alpha1.BreakGlassEngaged, ready, cond(meshv1alpha1.EngagedCondition, "True", meshv1alpha1.SucceededReason, "")), want: "Healthy", msg: "500 namespaces"},
			{name: "engaging", obj: bg(meshv1alpha1.BreakGlassEngaging, notReady, reconciling), want: "Progressing", msg: "INC-4711"},
			{name: "failed", obj: bg(meshv1alpha1.BreakGlassFailed, readyFalse, cond(meshv1alpha1.StalledCondition, "True", meshv1alpha1.ApplyFailedReason, "webhook patch refused")), want: "Degraded"},
		},
	}
}

func toUnstructured(t *testing.T, kind string, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: meshv1alpha1.GroupVersion.Group, Version: meshv1alpha1.GroupVersion.Version, Kind: kind})
	return u
}

// toLua converts JSON-like Go values to Lua values.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range v {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range v {
			tbl.Append(toLua(L, e))
		}
		return tbl
	default:
		panic(fmt.Sprintf("unexpected %T", v))
	}
}

// runHealth runs a health.lua script as Argo CD does and returns status and
// message.
func runHealth(t *testing.T, script string, u *unstructured.Unstructured) (string, string) {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, u.Object))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v, want a table", L.Get(-1))
	}
	return ret.RawGetString("status").String(), ret.RawGetString("message").String()
}

// argoFromKstatus maps a kstatus status onto Argo CD's health.
var argoFromKstatus = map[status.Status]string{
	status.CurrentStatus:     "Healthy",
	status.InProgressStatus:  "Progressing",
	status.FailedStatus:      "Degraded",
	status.TerminatingStatus: "Progressing",
}

func TestHealthChecks(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	all := fixtures()
	for _, kind := range manager.Kinds {
		script, err := os.ReadFile(filepath.Join(root, "config", "argocd", "meshplane.io", kind, "health.lua"))
		if err != nil {
			t.Errorf("%s has no Argo CD health check: %v", kind, err)
			continue
		}
		if len(all[kind]) == 0 {
			t.Errorf("%s has no fixtures", kind)
		}
		seen := map[string]bool{}
		for _, f := range all[kind] {
			t.Run(kind+"/"+f.name, func(t *testing.T) {
				u := toUnstructured(t, kind, f.obj)
				got, msg := runHealth(t, string(script), u)
				seen[got] = true
				if got != f.want || !strings.Contains(msg, f.msg) {
					t.Errorf("health %s %q, want %s containing %q", got, msg, f.want, f.msg)
				}
				res, err := status.Compute(u)
				if err != nil {
					t.Fatal(err)
				}
				if f.kstatusDiffers != "" {
					t.Logf("kstatus %s, Argo CD %s: %s", res.Status, got, f.kstatusDiffers)
					return
				}
				if argoFromKstatus[res.Status] != got {
					t.Errorf("kstatus says %s (%s), the health check %s", res.Status, res.Message, got)
				}
			})
		}
		for _, s := range []string{"Healthy", "Progressing", "Degraded"} {
			if !seen[s] {
				t.Errorf("%s: no fixture reaches %s", kind, s)
			}
		}
	}
}

// TestDeletingIsProgressing checks deletion for every kind against kstatus.
func TestDeletingIsProgressing(t *testing.T) {
	root, _ := cluster.RepoRoot()
	for kind, fs := range fixtures() {
		script, err := os.ReadFile(filepath.Join(root, "config", "argocd", "meshplane.io", kind, "health.lua"))
		if err != nil {
			t.Fatal(err)
		}
		u := toUnstructured(t, kind, fs[0].obj)
		now := metav1.Now()
		u.SetDeletionTimestamp(&now)
		got, _ := runHealth(t, string(script), u)
		res, _ := status.Compute(u)
		if got != "Progressing" || res.Status != status.TerminatingStatus {
			t.Errorf("%s being deleted: health %s, kstatus %s", kind, got, res.Status)
		}
	}
}

// TestHealthChecksGenerated checks that every health.lua is the shared
// kstatus part followed by the kind's part (make argocd).
func TestHealthChecksGenerated(t *testing.T) {
	root, _ := cluster.RepoRoot()
	dir := filepath.Join(root, "config", "argocd")
	prelude, err := os.ReadFile(filepath.Join(dir, "src", "kstatus.lua"))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := os.ReadFile(filepath.Join(dir, "argocd-cm-patch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range manager.Kinds {
		part, err := os.ReadFile(filepath.Join(dir, "src", strings.ToLower(kind)+".lua"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "meshplane.io", kind, "health.lua"))
		if err != nil || string(got) != string(prelude)+string(part) {
			t.Errorf("config/argocd/meshplane.io/%s/health.lua is stale (run make argocd)", kind)
		}
		if !strings.Contains(string(cm), "resource.customizations.health.meshplane.io_"+kind+": |") {
			t.Errorf("argocd-cm-patch.yaml lacks %s", kind)
		}
	}
}
