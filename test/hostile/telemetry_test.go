package hostile

import (
	"fmt"
	"slices"
	"strings"

	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// TelemetryPolicy cases: inputs the API server refuses (on create, and on
// update of a Ready policy whose Telemetry must stay as it was), features
// a mesh or data plane cannot express (refused naming the feature and the
// mesh, nothing written), overlapping policies, and foreign objects
// (a Telemetry Meshplane did not create, a namespace's own access-log
// annotation).

const accessLog = "config.linkerd.io/access-log"

// GoodTelemetryPolicy is a namespace-wide policy every mesh but Cilium
// expresses: access logs on (and, off Linkerd, tracing at 10%).
func GoodTelemetryPolicy(ns, name string, m Mesh) *meshv1alpha1.TelemetryPolicy {
	p := &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.TelemetryPolicySpec{AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true}}}
	p.Spec.Provider = Provider(m)
	if m == Istio {
		p.Spec.Tracing = &meshv1alpha1.TracingSettings{Enabled: true, SamplingPercentage: "10"}
	}
	return p
}

// telemetryInventory is the namespace's inventory plus its Telemetries
// (an output kind the framework's inventory does not list).
func telemetryInventory(h *H, ns string) Inventory {
	h.Helper()
	inv := h.Inventory(ns)
	l := &istiotelemetry.TelemetryList{}
	h.Must(h.C.List(h.Ctx, l, client.InNamespace(ns)))
	for _, o := range l.Items {
		inv["Telemetry/"+o.Name] = o.ResourceVersion
	}
	return inv
}

// sameTelemetry asserts nothing was added, removed or written in ns,
// Telemetries included.
func sameTelemetry(h *H, ns string, before Inventory) {
	h.Helper()
	after := telemetryInventory(h, ns)
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, fmt.Sprintf("%s %q -> %q", k, v, after[k]))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, k+" added")
		}
	}
	if len(diff) > 0 {
		slices.Sort(diff)
		h.Fatalf("namespace %s changed: %s", ns, strings.Join(diff, ", "))
	}
}

// telemetryEdit breaks a valid TelemetryPolicy; want are the API server's
// refusal's fragments.
type telemetryEdit struct {
	name string
	edit func(p *meshv1alpha1.TelemetryPolicy)
	want []string
}

func tracingOn(p *meshv1alpha1.TelemetryPolicy) *meshv1alpha1.TracingSettings {
	if p.Spec.Tracing == nil {
		p.Spec.Tracing = &meshv1alpha1.TracingSettings{Enabled: true}
	}
	return p.Spec.Tracing
}

var telemetryEdits = []telemetryEdit{
	{"nothing configured", func(p *meshv1alpha1.TelemetryPolicy) { p.Spec.AccessLogging, p.Spec.Tracing = nil, nil },
		[]string{"a TelemetryPolicy needs tracing, accessLogging or metrics"}},
	{"sampling 101", func(p *meshv1alpha1.TelemetryPolicy) { tracingOn(p).SamplingPercentage = "101" },
		[]string{"spec.tracing.samplingPercentage", "should match"}},
	{"sampling negative", func(p *meshv1alpha1.TelemetryPolicy) { tracingOn(p).SamplingPercentage = "-1" },
		[]string{"spec.tracing.samplingPercentage", "should match"}},
	{"sampling three decimals", func(p *meshv1alpha1.TelemetryPolicy) { tracingOn(p).SamplingPercentage = "12.345" },
		[]string{"spec.tracing.samplingPercentage", "should match"}},
	{"sampling in exponent form", func(p *meshv1alpha1.TelemetryPolicy) { tracingOn(p).SamplingPercentage = "1e2" },
		[]string{"spec.tracing.samplingPercentage", "should match"}},
	{"sampling with tracing off", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Tracing = &meshv1alpha1.TracingSettings{Enabled: false, SamplingPercentage: "5"}
	}, []string{"tracing.samplingPercentage and tracing.customTags need tracing.enabled true"}},
	{"custom tags with tracing off", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Tracing = &meshv1alpha1.TracingSettings{Enabled: false, CustomTags: []meshv1alpha1.CustomTag{{Name: "team", Literal: ptrTo("x")}}}
	}, []string{"tracing.samplingPercentage and tracing.customTags need tracing.enabled true"}},
	{"custom tag literal and header", func(p *meshv1alpha1.TelemetryPolicy) {
		tracingOn(p).CustomTags = []meshv1alpha1.CustomTag{{Name: "team", Literal: ptrTo("x"), RequestHeader: ptrTo("x-team")}}
	}, []string{"a custom tag needs exactly one of literal and requestHeader"}},
	{"custom tag without a value", func(p *meshv1alpha1.TelemetryPolicy) {
		tracingOn(p).CustomTags = []meshv1alpha1.CustomTag{{Name: "team"}}
	}, []string{"a custom tag needs exactly one of literal and requestHeader"}},
	{"custom tag names repeated", func(p *meshv1alpha1.TelemetryPolicy) {
		tracingOn(p).CustomTags = []meshv1alpha1.CustomTag{{Name: "team", Literal: ptrTo("a")}, {Name: "team", Literal: ptrTo("b")}}
	}, []string{"spec.tracing.customTags[1]", "Duplicate value"}},
	{"custom tag header with a space", func(p *meshv1alpha1.TelemetryPolicy) {
		tracingOn(p).CustomTags = []meshv1alpha1.CustomTag{{Name: "tenant", RequestHeader: ptrTo("x tenant")}}
	}, []string{"spec.tracing.customTags[0].requestHeader", "should match"}},
	{"seventeen custom tags", func(p *meshv1alpha1.TelemetryPolicy) {
		t := tracingOn(p)
		for i := range 17 {
			t.CustomTags = append(t.CustomTags, meshv1alpha1.CustomTag{Name: fmt.Sprintf("t%d", i), Literal: ptrTo("v")})
		}
	}, []string{"spec.tracing.customTags", "must have at most 16 items"}},
	{"filter with access logs off", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.AccessLogging = &meshv1alpha1.AccessLogSettings{Enabled: false, Filter: &meshv1alpha1.AccessLogFilter{MinResponseCode: 500}}
	}, []string{"accessLogging.filter needs accessLogging.enabled true"}},
	{"response code 99", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.AccessLogging.Filter = &meshv1alpha1.AccessLogFilter{MinResponseCode: 99}
	}, []string{"spec.accessLogging.filter.minResponseCode", "greater than or equal to 100"}},
	{"response code 600", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.AccessLogging.Filter = &meshv1alpha1.AccessLogFilter{MinResponseCode: 600}
	}, []string{"spec.accessLogging.filter.minResponseCode", "less than or equal to 599"}},
	{"no tags to remove", func(p *meshv1alpha1.TelemetryPolicy) { p.Spec.Metrics = &meshv1alpha1.MetricsSettings{} },
		[]string{"spec.metrics.removeTags"}},
	{"metric tag upper case", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Metrics = &meshv1alpha1.MetricsSettings{RemoveTags: []string{"Request-Protocol"}}
	}, []string{"spec.metrics.removeTags[0]", "should match"}},
	{"metric tag repeated", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Metrics = &meshv1alpha1.MetricsSettings{RemoveTags: []string{"request_protocol", "request_protocol"}}
	}, []string{"spec.metrics.removeTags[1]", "Duplicate value"}},
	{"unknown provider", func(p *meshv1alpha1.TelemetryPolicy) { p.Spec.Provider = "Consul" },
		[]string{"spec.provider", "supported values"}},
}

func init() {
	RegisterControl("TelemetryPolicy", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		p := GoodTelemetryPolicy(ns, "control", m)
		h.Create(p)
		h.Ready(p)
	})
	for _, e := range telemetryEdits {
		Register(Case{Category: "spec", Kind: "TelemetryPolicy", Mesh: Istio, Name: "create " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				before := telemetryInventory(h, ns)
				p := GoodTelemetryPolicy(ns, "bad", Istio)
				e.edit(p)
				h.Refused(p, e.want...)
				sameTelemetry(h, ns, before)
			}})
	}
	for _, e := range telemetryEdits[1:3] {
		Register(Case{Category: "refused-update", Kind: "TelemetryPolicy", Mesh: Istio, Name: "update " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				p := GoodTelemetryPolicy(ns, "web", Istio)
				h.Create(p)
				h.Ready(p)
				before := telemetryInventory(h, ns)
				gen := p.Generation
				h.Rejected(h.Update(p, func() { e.edit(p) }), e.want...)
				sameTelemetry(h, ns, before)
				h.Must(h.C.Get(h.Ctx, keyOf(p), p))
				if p.Generation != gen {
					h.Fatalf("generation moved from %d to %d on a refused update", gen, p.Generation)
				}
			}})
	}
	registerTelemetryRefusals()
	registerTelemetryOverlapAndForeign()
}

// telemetryRefusal is a policy a mesh refuses and the Ready message's
// fragments.
type telemetryRefusal struct {
	mesh Mesh
	name string
	edit func(p *meshv1alpha1.TelemetryPolicy)
	want []string
}

var telemetryRefusalCases = []telemetryRefusal{
	{Linkerd, "sampling", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Tracing = &meshv1alpha1.TracingSettings{Enabled: true, SamplingPercentage: "1"}
	}, []string{"features Tracing, TracingSampling are not supported by Linkerd", "follows the caller's sampling decision"}},
	{Linkerd, "workload selector", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	}, []string{"feature PerWorkloadTelemetry is not supported by Linkerd", "sets on the namespace"}},
	{Linkerd, "access-log filter", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.AccessLogging.Filter = &meshv1alpha1.AccessLogFilter{MinResponseCode: 500}
	}, []string{"feature AccessLogFilter is not supported by Linkerd", "no filter"}},
	{Linkerd, "access logs off", func(p *meshv1alpha1.TelemetryPolicy) { p.Spec.AccessLogging.Enabled = false },
		[]string{"feature AccessLogDisable is not supported by Linkerd", "cannot turn off an annotation it did not set"}},
	{Linkerd, "metric tag removal", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Metrics = &meshv1alpha1.MetricsSettings{RemoveTags: []string{"request_protocol"}}
	}, []string{"feature MetricTagRemoval is not supported by Linkerd", "no per-label removal"}},
	{Cilium, "access logs", func(*meshv1alpha1.TelemetryPolicy) {},
		[]string{"feature AccessLogging is not supported by Cilium", "Hubble records every flow", "hubble.enabled"}},
	{Cilium, "tracing", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.AccessLogging, p.Spec.Tracing = nil, &meshv1alpha1.TracingSettings{Enabled: true}
	}, []string{"feature Tracing is not supported by Cilium", "Hubble"}},
	{Istio, "selector with matchExpressions", func(p *meshv1alpha1.TelemetryPolicy) {
		p.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
	}, []string{"feature PerWorkloadTelemetry is not supported by Istio", "express spec.selector with matchLabels"}},
}

func registerTelemetryRefusals() {
	for _, r := range telemetryRefusalCases {
		Register(Case{Category: "unsupported", Kind: "TelemetryPolicy", Mesh: r.mesh, Name: r.name,
			Run: func(h *H) {
				ns := h.Namespace(r.mesh)
				before := telemetryInventory(h, ns)
				foreign := h.Snapshot(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
				p := GoodTelemetryPolicy(ns, "bad", r.mesh)
				r.edit(p)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, append(r.want, "nothing was applied")...)
				delete(before, "TelemetryPolicy/bad")
				sameTelemetry(h, ns, before)
				h.Unchanged(foreign)
				// Cilium expresses no TelemetryPolicy: the control is
				// another mesh's.
				control := r.mesh
				if control == Cilium {
					control = Istio
				}
				h.Control("TelemetryPolicy", control)
			}})
	}
	Register(Case{Category: "silent-drop", Kind: "TelemetryPolicy", Mesh: Istio, Name: "ambient namespace without L7 telemetry",
		Run: func(h *H) {
			ns := testenv.Namespace(h.T, h.C, map[string]string{"istio.io/dataplane-mode": "ambient"})
			before := telemetryInventory(h, ns)
			p := GoodTelemetryPolicy(ns, "bad", Istio)
			h.Create(p)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "are not supported by Istio in ambient namespace "+ns,
				"ztunnel has no L7 telemetry", "nothing was applied")
			sameTelemetry(h, ns, before)
			h.Control("TelemetryPolicy", Istio)
		}})
	Register(Case{Category: "half-applied", Kind: "TelemetryPolicy", Mesh: Istio, Name: "unsupported update keeps the previous Telemetry",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			p := GoodTelemetryPolicy(ns, "web", Istio)
			h.Create(p)
			h.Ready(p)
			before := telemetryInventory(h, ns)
			h.Must(h.Update(p, func() {
				p.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
			}))
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "PerWorkloadTelemetry")
			delete(before, "TelemetryPolicy/web")
			sameTelemetry(h, ns, before)
			tel := &istiotelemetry.Telemetry{}
			h.Must(h.C.Get(h.Ctx, keyOf(p), tel))
			if tel.Spec.Selector != nil || tel.Spec.Tracing[0].GetRandomSamplingPercentage().GetValue() != 10 {
				h.Fatalf("the previous generation's Telemetry changed: %v", &tel.Spec)
			}
		}})
}

func registerTelemetryOverlapAndForeign() {
	for _, m := range []Mesh{Istio, Linkerd} {
		Register(Case{Category: "overlap", Kind: "TelemetryPolicy", Mesh: m, Name: "second namespace-wide policy",
			Run: func(h *H) {
				ns := h.Namespace(m)
				first := GoodTelemetryPolicy(ns, "first", m)
				h.Create(first)
				h.Ready(first)
				before := telemetryInventory(h, ns)
				second := GoodTelemetryPolicy(ns, "second", m)
				h.Create(second)
				h.Stalled(second, meshv1alpha1.ConflictReason, "TelemetryPolicy first (the whole namespace) already configures telemetry for workloads this policy selects (the whole namespace)",
					"merge the two into one")
				delete(before, "TelemetryPolicy/second")
				delete(before, "TelemetryPolicy/first")
				sameTelemetry(h, ns, before)
				h.Ready(first)
			}})
	}
	Register(Case{Category: "overlap", Kind: "TelemetryPolicy", Mesh: Istio, Name: "overlapping workload selectors",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			first := GoodTelemetryPolicy(ns, "first", Istio)
			first.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			h.Create(first)
			h.Ready(first)
			second := GoodTelemetryPolicy(ns, "second", Istio)
			second.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}
			h.Create(second)
			h.Stalled(second, meshv1alpha1.ConflictReason, "TelemetryPolicy first (selector app=web)")
			if err := h.C.Get(h.Ctx, keyOf(second), &istiotelemetry.Telemetry{}); !apierrors.IsNotFound(err) {
				h.Fatalf("the losing policy wrote a Telemetry: %v", err)
			}
		}})
	Register(Case{Category: "foreign", Kind: "TelemetryPolicy", Mesh: Istio, Name: "Telemetry of the same name not created by Meshplane",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			mine := &istiotelemetry.Telemetry{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
			h.Create(mine)
			foreign := h.Snapshot(mine)
			p := GoodTelemetryPolicy(ns, "web", Istio)
			h.Create(p)
			h.Stalled(p, meshv1alpha1.ConflictReason, "Telemetry "+ns+"/web already exists and was not created by Meshplane; it is never taken over")
			h.Unchanged(foreign)
			h.Control("TelemetryPolicy", Istio)
		}})
	Register(Case{Category: "foreign", Kind: "TelemetryPolicy", Mesh: Linkerd, Name: "deletion restores the namespace's own access-log format",
		Run: func(h *H) {
			ns := testenv.AnnotatedNamespace(h.T, h.C, map[string]string{"team": "shop"},
				map[string]string{"linkerd.io/inject": "enabled", accessLog: "json", "owner": "team-shop"})
			p := GoodTelemetryPolicy(ns, "web", Linkerd)
			h.Create(p)
			h.Ready(p)
			if v, _ := nsAnnotation(h, ns, accessLog); v != "apache" {
				h.Fatalf("access-log %q while the policy is Ready, want apache", v)
			}
			h.Must(h.C.Delete(h.Ctx, p))
			h.gone(p)
			n := nsOf(h, ns)
			if n.Annotations[accessLog] != "json" || n.Annotations["owner"] != "team-shop" || n.Labels["team"] != "shop" {
				h.Fatalf("namespace not restored: annotations %v labels %v", n.Annotations, n.Labels)
			}
		}})
	Register(Case{Category: "foreign", Kind: "TelemetryPolicy", Mesh: Linkerd, Name: "provider switch to Istio releases the annotation",
		Run: func(h *H) {
			ns := h.Namespace(Linkerd)
			p := GoodTelemetryPolicy(ns, "web", Linkerd)
			h.Create(p)
			h.Ready(p)
			h.Must(h.Update(p, func() { p.Spec.Provider = meshv1alpha1.ProviderIstio }))
			h.Ready(p)
			if v, ok := nsAnnotation(h, ns, accessLog); ok {
				h.Fatalf("access-log %q left on the namespace after the switch", v)
			}
			h.Must(h.C.Get(h.Ctx, keyOf(p), &istiotelemetry.Telemetry{}))
			h.Must(h.C.Get(h.Ctx, keyOf(p), p))
			if len(p.Finalizers) != 0 {
				h.Fatalf("finalizers %v kept after the shared field was released", p.Finalizers)
			}
		}})
}
