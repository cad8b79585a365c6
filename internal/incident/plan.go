package incident

import (
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshplane/meshplane/internal/mesh"
)

// NamespaceNameLabel is the label the API server sets on every namespace
// to its name; narrowing a webhook with NotIn on it excludes exactly the
// namespaces in scope.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// RestartedAtAnnotation is the pod-template annotation kubectl rollout
// restart sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// Actions are the actions of a BreakGlass, defaults resolved.
type Actions struct {
	DetachInjection, RelaxPolicies, RestartWorkloads bool
}

// Inputs is what a plan is computed from: the live objects, as
// unstructured JSON (runtime.DefaultUnstructuredConverter), already
// filtered to the scope by the caller.
type Inputs struct {
	// BreakGlass is the name written in NamespaceAnnotation.
	BreakGlass string
	Driver     mesh.BreakGlassDriver
	Actions    Actions
	// Namespaces in scope.
	Namespaces []map[string]any
	// WholeMesh: the scope is every namespace the mesh serves, so the
	// webhooks may also fail open.
	WholeMesh bool
	// Mutating and Validating are every webhook configuration of the
	// cluster; the driver picks the mesh's.
	Mutating, Validating []map[string]any
	// Policies are the policy objects in scope to relax (already filtered
	// by ownership).
	Policies []map[string]any
	// Workloads are the Deployments, StatefulSets and DaemonSets in scope.
	Workloads []map[string]any
	// Now stamps the restart annotation.
	Now time.Time
}

// Plan returns every change a BreakGlass makes, in a stable order, with
// the prior value read from the inputs. A change whose prior value already
// equals the value to set is left out.
func Plan(in Inputs) []Change {
	var out []Change
	add := func(step Step, obj map[string]any, path []string, set Value) {
		prior := Get(obj, path)
		if prior.Equal(set) {
			return
		}
		out = append(out, Change{Step: step, Object: refOf(obj), Path: path, Prior: prior, Set: set})
	}
	scope := make([]string, 0, len(in.Namespaces))
	for _, ns := range in.Namespaces {
		scope = append(scope, nameOf(ns))
	}
	slices.Sort(scope)

	for _, ns := range in.Namespaces {
		add(StepCoverage, ns, []string{"metadata", "annotations", NamespaceAnnotation}, ValueOf(in.BreakGlass))
		if in.Actions.DetachInjection {
			for _, m := range in.Driver.InjectionMarkers() {
				add(StepNamespaces, ns, markerPath(m), Absent)
			}
		}
		if in.Actions.RelaxPolicies {
			for k, v := range in.Driver.RelaxedNamespaceAnnotations() {
				add(StepNamespaces, ns, []string{"metadata", "annotations", k}, ValueOf(v))
			}
		}
	}

	neutralise := func(cfg map[string]any) {
		hooks, _ := cfg["webhooks"].([]any)
		for _, h := range hooks {
			w, _ := h.(map[string]any)
			name, _ := w["name"].(string)
			if name == "" {
				continue
			}
			base := []string{"webhooks", ListKey(name)}
			if len(scope) > 0 {
				path := append(slices.Clone(base), "namespaceSelector", "matchExpressions")
				req := ValueOf(NotIn(scope))
				if !hasElement(Get(cfg, path), req) {
					out = append(out, Change{Step: StepWebhooks, Object: refOf(cfg), Path: path, Set: req, Element: true})
				}
			}
			if in.WholeMesh {
				add(StepWebhooks, cfg, append(slices.Clone(base), "failurePolicy"), ValueOf("Ignore"))
			}
		}
	}
	if in.Actions.DetachInjection {
		for _, cfg := range in.Mutating {
			if in.Driver.IsInjectorWebhook(mutatingOf(cfg)) {
				neutralise(cfg)
			}
		}
	}
	if in.Actions.RelaxPolicies {
		for _, cfg := range in.Validating {
			if in.Driver.IsPolicyValidatingWebhook(validatingOf(cfg)) {
				neutralise(cfg)
			}
		}
		kinds := in.Driver.PolicyKinds()
		for _, p := range in.Policies {
			if !slices.Contains(kinds, refOf(p).GVK()) {
				continue
			}
			if spec, ok := in.Driver.RelaxPolicy(p); ok {
				add(StepPolicies, p, []string{"spec"}, ValueOf(spec))
			}
		}
	}
	if in.Actions.RestartWorkloads {
		stamp := in.Now.UTC().Format(time.RFC3339)
		for _, w := range in.Workloads {
			add(StepWorkloads, w, []string{"spec", "template", "metadata", "annotations", RestartedAtAnnotation}, ValueOf(stamp))
		}
	}
	sortChanges(out)
	return out
}

// NotIn is the requirement a BreakGlass adds to a webhook's
// namespaceSelector: the webhook then matches what it matched, except the
// namespaces in scope (label selector requirements are ANDed). Each
// BreakGlass adds its own requirement and removes only that one, so
// BreakGlasses over different namespaces of one webhook restore exactly in
// any order.
func NotIn(scope []string) map[string]any {
	values := make([]any, len(scope))
	for i, n := range scope {
		values[i] = n
	}
	return map[string]any{"key": NamespaceNameLabel, "operator": "NotIn", "values": values}
}

func markerPath(m mesh.Marker) []string {
	if m.Annotation {
		return []string{"metadata", "annotations", m.Key}
	}
	return []string{"metadata", "labels", m.Key}
}

func refOf(obj map[string]any) ObjectRef {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv, _ := schema.ParseGroupVersion(apiVersion)
	md, _ := obj["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	return ObjectRef{Group: gv.Group, Version: gv.Version, Kind: kind, Namespace: ns, Name: nameOf(obj)}
}

func nameOf(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	n, _ := md["name"].(string)
	return n
}

func mutatingOf(obj map[string]any) *admissionregistrationv1.MutatingWebhookConfiguration {
	out := &admissionregistrationv1.MutatingWebhookConfiguration{}
	_ = runtime.DefaultUnstructuredConverter.FromUnstructured(obj, out)
	return out
}

func validatingOf(obj map[string]any) *admissionregistrationv1.ValidatingWebhookConfiguration {
	out := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	_ = runtime.DefaultUnstructuredConverter.FromUnstructured(obj, out)
	return out
}
