package incident

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/internal/mesh/cilium"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/mesh/linkerd"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func obj(s string) map[string]any {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}

func istioInputs() Inputs {
	return Inputs{
		BreakGlass: "outage",
		Driver:     &istio.Provider{},
		Actions:    Actions{DetachInjection: true, RelaxPolicies: true, RestartWorkloads: true},
		Namespaces: []map[string]any{
			obj(`{apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {istio-injection: enabled, team: a}}}`),
			obj(`{apiVersion: v1, kind: Namespace, metadata: {name: pay, labels: {istio.io/rev: 1-28-1}, annotations: {note: x}}}`),
			obj(`{apiVersion: v1, kind: Namespace, metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}}`),
		},
		Mutating: []map[string]any{
			obj(`{apiVersion: admissionregistration.k8s.io/v1, kind: MutatingWebhookConfiguration, metadata: {name: istio-sidecar-injector},
			  webhooks: [{name: rev.namespace.sidecar-injector.istio.io, failurePolicy: Fail,
			    namespaceSelector: {matchExpressions: [{key: istio.io/rev, operator: In, values: [default]}]}},
			   {name: object.sidecar-injector.istio.io, failurePolicy: Fail}]}`),
			obj(`{apiVersion: admissionregistration.k8s.io/v1, kind: MutatingWebhookConfiguration, metadata: {name: other}, webhooks: [{name: x.example.com, failurePolicy: Fail}]}`),
		},
		Validating: []map[string]any{
			obj(`{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingWebhookConfiguration, metadata: {name: istiod-default-validator}, webhooks: [{name: validation.istio.io, failurePolicy: Fail}]}`),
		},
		Policies: []map[string]any{
			obj(`{apiVersion: security.istio.io/v1, kind: PeerAuthentication, metadata: {name: zt, namespace: shop}, spec: {mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: STRICT}}}}`),
			obj(`{apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: zt, namespace: shop}, spec: {action: ALLOW, rules: [{from: [{source: {namespaces: [pay]}}]}]}}`),
			obj(`{apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: deny, namespace: pay}, spec: {action: DENY, rules: [{}]}}`),
			obj(`{apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: ext, namespace: pay}, spec: {action: CUSTOM, provider: {name: x}}}`),
			obj(`{apiVersion: security.istio.io/v1, kind: PeerAuthentication, metadata: {name: loose, namespace: pay}, spec: {mtls: {mode: PERMISSIVE}}}`),
		},
		Workloads: []map[string]any{
			obj(`{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop}, spec: {template: {metadata: {labels: {app: web}}}}}`),
		},
		WholeMesh: true,
		Now:       time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC),
	}
}

func TestPlanGolden(t *testing.T) {
	linkerdIn := Inputs{
		BreakGlass: "outage", Driver: &linkerd.Provider{}, Actions: Actions{DetachInjection: true, RelaxPolicies: true},
		Namespaces: []map[string]any{
			obj(`{apiVersion: v1, kind: Namespace, metadata: {name: shop, annotations: {linkerd.io/inject: enabled, config.linkerd.io/default-inbound-policy: deny}}}`),
		},
		Mutating: []map[string]any{obj(`{apiVersion: admissionregistration.k8s.io/v1, kind: MutatingWebhookConfiguration, metadata: {name: linkerd-proxy-injector-webhook-config},
			webhooks: [{name: linkerd-proxy-injector.linkerd.io, failurePolicy: Ignore, namespaceSelector: {matchExpressions: [{key: config.linkerd.io/admission-webhooks, operator: NotIn, values: [disabled]}]}}]}`)},
		Policies: []map[string]any{
			obj(`{apiVersion: policy.linkerd.io/v1beta3, kind: Server, metadata: {name: zt-8080, namespace: shop}, spec: {port: 8080, podSelector: {}, accessPolicy: deny}}`),
			obj(`{apiVersion: policy.linkerd.io/v1alpha1, kind: AuthorizationPolicy, metadata: {name: zt-r0-d0-8080, namespace: shop}, spec: {targetRef: {group: policy.linkerd.io, kind: Server, name: zt-8080}, requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: zt-r0}]}}`),
		},
	}
	ciliumIn := Inputs{
		BreakGlass: "outage", Driver: &cilium.Provider{}, Actions: Actions{DetachInjection: true, RelaxPolicies: true},
		Namespaces: []map[string]any{obj(`{apiVersion: v1, kind: Namespace, metadata: {name: shop}}`)},
		Policies: []map[string]any{
			obj(`{apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: zt, namespace: shop}, spec: {endpointSelector: {}, ingress: [{fromEndpoints: [{matchLabels: {app: a}}]}]}}`),
		},
	}
	for name, in := range map[string]Inputs{"istio": istioInputs(), "linkerd": linkerdIn, "cilium": ciliumIn} {
		t.Run(name, func(t *testing.T) {
			plan := Plan(in)
			var b strings.Builder
			for _, c := range plan {
				fmt.Fprintf(&b, "- step: %s\n  object: %s\n  field: %s\n  prior: %s\n  set: %s\n", c.Step, c.Object, c.Field(), c.Prior, c.Set)
			}
			path := filepath.Join("testdata", name+".plan.golden.yaml")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/incident -update)", err)
			}
			if string(want) != b.String() {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, b.String())
			}
		})
	}
}

// apply plays a plan's writes on the inputs, as the controller does.
func apply(t *testing.T, objs map[ObjectRef]map[string]any, changes []Change, restore bool) (writes int, conflicts []Conflict) {
	t.Helper()
	rec := &Record{Changes: changes}
	order := EngageOrder
	if restore {
		order = RestoreOrder
	}
	for _, step := range order {
		for _, oc := range rec.StepObjects(step) {
			o := objs[oc.Object]
			f := Engage
			if restore {
				f = Restore
			}
			out, err := f(o, oc.Changes)
			if err != nil {
				t.Fatal(err)
			}
			if out.Modified != nil {
				objs[oc.Object] = out.Modified
			}
			writes += len(out.Writes)
			conflicts = append(conflicts, out.Conflicts...)
		}
	}
	return writes, conflicts
}

func index(in Inputs) map[ObjectRef]map[string]any {
	out := map[ObjectRef]map[string]any{}
	for _, list := range [][]map[string]any{in.Namespaces, in.Mutating, in.Validating, in.Policies, in.Workloads} {
		for _, o := range list {
			out[refOf(o)] = runtime.DeepCopyJSON(o)
		}
	}
	return out
}

func jsonOf(t *testing.T, objs map[ObjectRef]map[string]any) string {
	// An empty map and a missing one are the same object on the server.
	var prune func(v any) any
	prune = func(v any) any {
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				if pm, ok := prune(e).(map[string]any); ok && len(pm) == 0 {
					delete(m, k)
				}
			}
		}
		return v
	}
	byName := map[string]any{}
	for r, o := range objs {
		byName[r.String()] = prune(runtime.DeepCopyJSON(o))
	}
	b, err := json.Marshal(byName)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEngageRestoreRoundTrip(t *testing.T) {
	in := istioInputs()
	before := index(in)
	plan := Plan(in)
	objs := index(in)
	writes, conflicts := apply(t, objs, plan, false)
	if writes != len(plan) || len(conflicts) != 0 {
		t.Fatalf("engage wrote %d of %d, conflicts %v", writes, len(plan), conflicts)
	}
	shop := objs[ObjectRef{Version: "v1", Kind: "Namespace", Name: "shop"}]
	if Get(shop, []string{"metadata", "labels", "istio-injection"}).Present {
		t.Error("istio-injection label still present")
	}
	// Engaging again is a no-op (idempotent, and what a restarted operator does).
	if w, c := apply(t, objs, plan, false); w != 0 || len(c) != 0 {
		t.Fatalf("second engage wrote %d, conflicts %v", w, c)
	}
	if w, c := apply(t, objs, plan, true); w != len(plan) || len(c) != 0 {
		t.Fatalf("restore wrote %d of %d, conflicts %v", w, len(plan), c)
	}
	if got, want := jsonOf(t, objs), jsonOf(t, before); got != want {
		t.Fatalf("restore is not exact:\n got %s\nwant %s", got, want)
	}
	if w, _ := apply(t, objs, plan, true); w != 0 {
		t.Fatalf("second restore wrote %d", w)
	}
}

func TestPartialEngageThenRestore(t *testing.T) {
	// An operator stopped half-way through engaging: only the first half
	// of the changes took effect. Restore puts back exactly those.
	in := istioInputs()
	before := index(in)
	plan := Plan(in)
	objs := index(in)
	apply(t, objs, plan[:len(plan)/2], false)
	apply(t, objs, plan, true)
	if got, want := jsonOf(t, objs), jsonOf(t, before); got != want {
		t.Fatalf("restore after a partial engage is not exact:\n got %s\nwant %s", got, want)
	}
}

func TestConflictNotOverwritten(t *testing.T) {
	in := istioInputs()
	plan := Plan(in)
	objs := index(in)
	apply(t, objs, plan, false)
	nsRef := ObjectRef{Version: "v1", Kind: "Namespace", Name: "shop"}
	// Someone labels the namespace for another revision during the incident.
	if err := Set(objs[nsRef], []string{"metadata", "labels", "istio-injection"}, ValueOf("disabled")); err != nil {
		t.Fatal(err)
	}
	_, conflicts := apply(t, objs, plan, true)
	if len(conflicts) != 1 || conflicts[0].Change.Object != nsRef || conflicts[0].Change.Field() != "metadata.labels[istio-injection]" {
		t.Fatalf("conflicts = %+v", conflicts)
	}
	if got := Get(objs[nsRef], []string{"metadata", "labels", "istio-injection"}); !got.Equal(ValueOf("disabled")) {
		t.Fatalf("conflicting field overwritten: %s", got)
	}
	if !strings.Contains(conflicts[0].Message(true), `"disabled"`) {
		t.Errorf("message %q does not name the value found", conflicts[0].Message(true))
	}
}

func TestClassify(t *testing.T) {
	c := Change{Path: []string{"metadata", "labels", "a"}, Prior: ValueOf("x"), Set: Absent}
	cases := []struct {
		obj  string
		want State
	}{
		{`{metadata: {labels: {a: x}}}`, Pending},
		{`{metadata: {labels: {}}}`, Applied},
		{`{metadata: {}}`, Applied},
		{`{metadata: {labels: {a: y}}}`, Conflicting},
	}
	for _, tc := range cases {
		if got := Classify(obj(tc.obj), c); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.obj, got, tc.want)
		}
	}
	w := Change{Path: []string{"webhooks", ListKey("a"), "failurePolicy"}, Prior: ValueOf("Fail"), Set: ValueOf("Ignore")}
	if got := Classify(obj(`{webhooks: [{name: b, failurePolicy: Ignore}, {name: a, failurePolicy: Fail}]}`), w); got != Pending {
		t.Errorf("webhook: %s, want Pending", got)
	}
}

func TestRecordSizeFor600Namespaces(t *testing.T) {
	in := istioInputs()
	in.Namespaces = nil
	for i := range 600 {
		in.Namespaces = append(in.Namespaces, obj(fmt.Sprintf(`{apiVersion: v1, kind: Namespace, metadata: {name: team-%04d, labels: {istio-injection: enabled, kubernetes.io/metadata.name: team-%04d}, annotations: {owner: team-%d}}}`, i, i, i)))
	}
	rec := &Record{Version: RecordVersion, BreakGlass: "outage", Changes: Plan(in)}
	b, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d changes: %d bytes compressed", len(rec.Changes), len(b))
	if len(b) > 200*1024 {
		t.Errorf("record of 600 namespaces is %d bytes; want well under 1 MiB", len(b))
	}
	back, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Changes) != len(rec.Changes) || !back.Changes[5].Set.Equal(rec.Changes[5].Set) {
		t.Fatal("record does not round-trip")
	}
}

// TestOnePatchPerNamespaceEachWay: a namespace's markers and its coverage
// annotation are engaged and restored in one patch, and every change of
// the plan is in exactly one patch of each order.
func TestOnePatchPerNamespaceEachWay(t *testing.T) {
	rec := &Record{Changes: Plan(istioInputs())}
	for name, order := range map[string][]Step{"engage": EngageOrder, "restore": RestoreOrder} {
		patches := map[ObjectRef]int{}
		changes := 0
		for _, step := range order {
			for _, oc := range rec.StepObjects(step) {
				patches[oc.Object]++
				changes += len(oc.Changes)
			}
		}
		if changes != len(rec.Changes) {
			t.Errorf("%s patches carry %d of the plan's %d changes", name, changes, len(rec.Changes))
		}
		for ref, n := range patches {
			if n != 1 {
				t.Errorf("%s patches %s %d times, want once", name, ref, n)
			}
		}
	}
}
