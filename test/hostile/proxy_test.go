package hostile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// ProxyPolicy cases: inputs the API server refuses (on create, and on
// update of a Ready policy whose workloads must stay as they were),
// features a mesh or data plane cannot express (refused naming the
// feature, the mesh and the alternative, nothing written), the shared
// pod-template annotations of other teams' workloads (a foreign field
// manager, an exact restore, Meshplane's own workloads, a foreign Sidecar
// with the output's name), overlaps, a BreakGlass, and an object stored
// before its rules existed.

const proxyCPU = "sidecar.istio.io/proxyCPU"

// GoodProxyPolicy sets a CPU request and a memory limit for the workloads
// labelled app=web (Cilium expresses none of it).
func GoodProxyPolicy(ns, name string, m Mesh) *meshv1alpha1.ProxyPolicy {
	p := &meshv1alpha1.ProxyPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ProxyPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Resources: &meshv1alpha1.ProxyResources{CPURequest: "100m", MemoryLimit: "256Mi"}}}
	p.Spec.Provider = Provider(m)
	return p
}

// proxyWorkload creates Deployment ns/name (pods app=<name>) with the
// given pod-template annotations and labels on the Deployment.
func proxyWorkload(h *H, ns, name string, annotations, labels map[string]string) *appsv1.Deployment {
	h.Helper()
	pods := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: pods},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pods, Annotations: annotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}}}
	h.Create(d)
	return d
}

// podAnnotations returns Deployment ns/name's pod-template annotations.
func podAnnotations(h *H, ns, name string) map[string]string {
	h.Helper()
	d := &appsv1.Deployment{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: name}, d))
	return d.Spec.Template.Annotations
}

// proxyInventory is the namespace's inventory plus its Deployments and
// Sidecars (kinds the framework's inventory does not list).
func proxyInventory(h *H, ns string) Inventory {
	h.Helper()
	inv := h.Inventory(ns)
	deps := &appsv1.DeploymentList{}
	h.Must(h.C.List(h.Ctx, deps, client.InNamespace(ns)))
	for _, o := range deps.Items {
		inv["Deployment/"+o.Name] = o.ResourceVersion
	}
	scs := &istionetworking.SidecarList{}
	h.Must(h.C.List(h.Ctx, scs, client.InNamespace(ns)))
	for _, o := range scs.Items {
		inv["Sidecar/"+o.Name] = o.ResourceVersion
	}
	return inv
}

// sameProxy asserts nothing was added, removed or written in ns,
// Deployments and Sidecars included.
func sameProxy(h *H, ns string, before Inventory) {
	h.Helper()
	after := proxyInventory(h, ns)
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

type proxyEdit struct {
	name string
	edit func(p *meshv1alpha1.ProxyPolicy)
	want []string
}

func resources(p *meshv1alpha1.ProxyPolicy) *meshv1alpha1.ProxyResources { return p.Spec.Resources }

func scope(p *meshv1alpha1.ProxyPolicy, hosts ...string) {
	p.Spec.EgressScope = &meshv1alpha1.ProxyEgressScope{Hosts: hosts}
}

var proxyEdits = []proxyEdit{
	{"nothing configured", func(p *meshv1alpha1.ProxyPolicy) { p.Spec.Resources = nil },
		[]string{"a ProxyPolicy needs resources or egressScope"}},
	{"empty resources", func(p *meshv1alpha1.ProxyPolicy) { p.Spec.Resources = &meshv1alpha1.ProxyResources{} },
		[]string{"resources needs at least one of cpuRequest, cpuLimit, memoryRequest and memoryLimit"}},
	{"cpuRequest lots", func(p *meshv1alpha1.ProxyPolicy) { resources(p).CPURequest = "lots" },
		[]string{"spec.resources.cpuRequest", "cpuRequest must be a positive Kubernetes quantity such as 100m or 1"}},
	{"cpuLimit zero", func(p *meshv1alpha1.ProxyPolicy) { resources(p).CPULimit = "0" },
		[]string{"spec.resources.cpuLimit", "cpuLimit must be a positive Kubernetes quantity such as 500m or 2"}},
	{"memoryLimit negative", func(p *meshv1alpha1.ProxyPolicy) { resources(p).MemoryLimit = "-1Gi" },
		[]string{"spec.resources.memoryLimit", "memoryLimit must be a positive Kubernetes quantity such as 256Mi or 1Gi"}},
	{"memoryRequest with a bang", func(p *meshv1alpha1.ProxyPolicy) { resources(p).MemoryRequest = "64MB!" },
		[]string{"spec.resources.memoryRequest", "memoryRequest must be a positive Kubernetes quantity such as 64Mi or 1Gi"}},
	{"cpu request above limit", func(p *meshv1alpha1.ProxyPolicy) { resources(p).CPURequest, resources(p).CPULimit = "2", "1500m" },
		[]string{"resources.cpuRequest must not exceed resources.cpuLimit: lower the request or raise the limit"}},
	{"memory request above limit", func(p *meshv1alpha1.ProxyPolicy) { resources(p).MemoryRequest = "1Gi" },
		[]string{"resources.memoryRequest must not exceed resources.memoryLimit: lower the request or raise the limit"}},
	{"quantity of 33 characters", func(p *meshv1alpha1.ProxyPolicy) { resources(p).CPURequest = strings.Repeat("1", 33) },
		[]string{"spec.resources.cpuRequest", "may not be more than 32"}},
	{"host without a namespace", func(p *meshv1alpha1.ProxyPolicy) { scope(p, "api.example.com") },
		[]string{"spec.egressScope.hosts[0]", "should match"}},
	{"host with a scheme", func(p *meshv1alpha1.ProxyPolicy) { scope(p, "./https://api.example.com") },
		[]string{"spec.egressScope.hosts[0]", "should match"}},
	{"host repeated", func(p *meshv1alpha1.ProxyPolicy) { scope(p, "./*", "./*") },
		[]string{"spec.egressScope.hosts[1]", "Duplicate value"}},
	{"no hosts", func(p *meshv1alpha1.ProxyPolicy) { scope(p) },
		[]string{"spec.egressScope.hosts"}},
	{"33 hosts", func(p *meshv1alpha1.ProxyPolicy) {
		var hosts []string
		for i := range 33 {
			hosts = append(hosts, fmt.Sprintf("ns%d/*", i))
		}
		scope(p, hosts...)
	}, []string{"spec.egressScope.hosts", "must have at most 32 items"}},
	{"batch size 0", func(p *meshv1alpha1.ProxyPolicy) {
		p.Spec.Rollout = &meshv1alpha1.ProxyRollout{BatchSize: ptrTo[int32](0)}
	},
		[]string{"spec.rollout.batchSize", "greater than or equal to 1"}},
	{"batch size 101", func(p *meshv1alpha1.ProxyPolicy) {
		p.Spec.Rollout = &meshv1alpha1.ProxyRollout{BatchSize: ptrTo[int32](101)}
	},
		[]string{"spec.rollout.batchSize", "less than or equal to 100"}},
	{"unknown provider", func(p *meshv1alpha1.ProxyPolicy) { p.Spec.Provider = "Consul" },
		[]string{"spec.provider", "supported values"}},
}

func init() {
	RegisterControl("ProxyPolicy", func(h *H, m Mesh) {
		ns := h.Namespace(m)
		proxyWorkload(h, ns, "web", nil, nil)
		p := GoodProxyPolicy(ns, "control", m)
		h.Create(p)
		h.Ready(p)
	})
	for _, e := range proxyEdits {
		Register(Case{Category: "spec", Kind: "ProxyPolicy", Mesh: Istio, Name: "create " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				proxyWorkload(h, ns, "web", nil, nil)
				before := proxyInventory(h, ns)
				p := GoodProxyPolicy(ns, "bad", Istio)
				e.edit(p)
				h.Refused(p, e.want...)
				sameProxy(h, ns, before)
			}})
	}
	for _, e := range []proxyEdit{proxyEdits[2], proxyEdits[7]} {
		Register(Case{Category: "refused-update", Kind: "ProxyPolicy", Mesh: Istio, Name: "update " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				proxyWorkload(h, ns, "web", nil, nil)
				p := GoodProxyPolicy(ns, "web", Istio)
				h.Create(p)
				h.Ready(p)
				before := proxyInventory(h, ns)
				gen := p.Generation
				h.Rejected(h.Update(p, func() { e.edit(p) }), e.want...)
				sameProxy(h, ns, before)
				h.Must(h.C.Get(h.Ctx, keyOf(p), p))
				if p.Generation != gen {
					h.Fatalf("generation moved from %d to %d on a refused update", gen, p.Generation)
				}
			}})
	}
	registerProxyRefusals()
	registerProxyShared()
	registerProxyOverlapAndIncident()
}

// proxyRefusal is a policy a mesh refuses and the Ready message's
// fragments.
type proxyRefusal struct {
	mesh    Mesh
	name    string
	ambient bool
	edit    func(p *meshv1alpha1.ProxyPolicy)
	want    []string
}

var proxyRefusalCases = []proxyRefusal{
	{Linkerd, "egress scope", false, func(p *meshv1alpha1.ProxyPolicy) { scope(p, "./*") },
		[]string{"feature ProxyEgressScope is not supported by Linkerd", "resolves destinations on demand", "use an EgressPolicy"}},
	{Cilium, "resources", false, func(*meshv1alpha1.ProxyPolicy) {},
		[]string{"feature ProxyResources is not supported by Cilium", "its Envoy runs once per node", "envoy.resources"}},
	{Cilium, "egress scope", false, func(p *meshv1alpha1.ProxyPolicy) { p.Spec.Resources = nil; scope(p, "./*") },
		[]string{"feature ProxyEgressScope is not supported by Cilium", "no per-workload proxy resources or outbound scope"}},
	{Istio, "egress scope selector with matchExpressions", false, func(p *meshv1alpha1.ProxyPolicy) {
		p.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}
		scope(p, "./*")
	}, []string{"feature ProxyEgressScope is not supported by Istio", "a Sidecar's workloadSelector takes labels only; express spec.selector with matchLabels"}},
	{Istio, "resources in an ambient namespace", true, func(*meshv1alpha1.ProxyPolicy) {},
		[]string{"feature ProxyResources is not supported by Istio in ambient namespace", "an ambient pod has no proxy of its own", "ztunnel.resources", "parametersRef"}},
	{Istio, "egress scope in an ambient namespace", true, func(p *meshv1alpha1.ProxyPolicy) { p.Spec.Resources = nil; scope(p, "./*") },
		[]string{"feature ProxyEgressScope is not supported by Istio in ambient namespace", "the Sidecar resource configures sidecar proxies only"}},
}

func registerProxyRefusals() {
	for _, r := range proxyRefusalCases {
		cat := "capability"
		if r.ambient {
			cat = "silent-drop"
		}
		Register(Case{Category: cat, Kind: "ProxyPolicy", Mesh: r.mesh, Name: r.name,
			Run: func(h *H) {
				ns := h.Namespace(r.mesh)
				if r.ambient {
					ns = testenv.AmbientNamespace(h.T, h.C, nil)
				}
				proxyWorkload(h, ns, "web", map[string]string{"team": "shop"}, nil)
				before := proxyInventory(h, ns)
				foreign := h.Snapshot(nsObj(ns), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
				p := GoodProxyPolicy(ns, "bad", r.mesh)
				r.edit(p)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, append(r.want, "nothing was applied")...)
				sameProxy(h, ns, before)
				h.Unchanged(foreign)
				control := r.mesh
				if control == Cilium {
					control = Istio
				}
				h.Control("ProxyPolicy", control)
			}})
	}
	Register(Case{Category: "stored-before-rule", Kind: "ProxyPolicy", Mesh: Istio, Isolated: true, Name: "cpuRequest lots",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "meshplane.io/v1alpha1", "kind": "ProxyPolicy",
				"metadata": map[string]any{"name": "stored", "namespace": ns},
				"spec":     map[string]any{"resources": map[string]any{"cpuRequest": "lots"}}}}
			testenv.StoreUnvalidated(h.T, h.C, u)
			h.StartManager()
			bad := &meshv1alpha1.ProxyPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stored"}}
			c := h.Stalled(bad, meshv1alpha1.InvalidSpecReason)
			if want := `spec.resources.cpuRequest "lots" is not a positive Kubernetes quantity: write it like "100m"`; c.Message != want {
				h.Fatalf("message\n got %q\nwant %q", c.Message, want)
			}
			if a := podAnnotations(h, ns, "web"); len(a) != 0 {
				h.Fatalf("the stored policy wrote %v", a)
			}
			h.Control("ProxyPolicy", Istio)
		}})
}

// registerProxyShared: the annotations are shared fields of other teams'
// workloads.
func registerProxyShared() {
	Register(Case{Category: "foreign", Kind: "ProxyPolicy", Mesh: Istio, Name: "annotation applied by another field manager",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			gitops := &unstructured.Unstructured{}
			gitops.SetAPIVersion("apps/v1")
			gitops.SetKind("Deployment")
			gitops.SetNamespace(ns)
			gitops.SetName("web")
			h.Must(unstructured.SetNestedStringMap(gitops.Object, map[string]string{proxyCPU: "2"}, "spec", "template", "metadata", "annotations"))
			h.Must(h.C.Apply(h.Ctx, client.ApplyConfigurationFromUnstructured(gitops), client.FieldOwner("argocd-controller")))
			before := proxyInventory(h, ns)
			foreign := h.Snapshot(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
			p := GoodProxyPolicy(ns, "web", Istio)
			h.Create(p)
			c := h.Stalled(p, meshv1alpha1.ConflictReason)
			want := "Deployment " + ns + `/web: spec.template.metadata.annotations[sidecar.istio.io/proxyCPU] is "2", applied by field manager argocd-controller, and this object sets "100m"; ` +
				`Meshplane never takes over a field another owner applies (it would apply it back): remove sidecar.istio.io/proxyCPU from argocd-controller's configuration, ` +
				`set it to "100m" there, or leave web out of spec.selector (nothing was applied)`
			if c.Message != want {
				h.Fatalf("message\n got %q\nwant %q", c.Message, want)
			}
			sameProxy(h, ns, before)
			h.Unchanged(foreign)
			h.Control("ProxyPolicy", Istio)
		}})
	Register(Case{Category: "deletion", Kind: "ProxyPolicy", Mesh: Linkerd, Name: "deletion restores hand-set annotations exactly",
		Run: func(h *H) {
			ns := h.Namespace(Linkerd)
			orig := map[string]string{"team": "shop", "config.linkerd.io/proxy-cpu-request": "50m"}
			proxyWorkload(h, ns, "web", orig, nil)
			foreign := h.Snapshot(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
			p := GoodProxyPolicy(ns, "web", Linkerd)
			h.Create(p)
			h.Ready(p)
			if got := podAnnotations(h, ns, "web"); got["config.linkerd.io/proxy-cpu-request"] != "100m" || got["config.linkerd.io/proxy-memory-limit"] != "256Mi" {
				h.Fatalf("annotations %v", got)
			}
			h.Must(h.C.Delete(h.Ctx, p))
			h.Eventually("restored", func() error {
				if got := podAnnotations(h, ns, "web"); !maps.Equal(got, orig) {
					return fmt.Errorf("annotations %v, want %v", got, orig)
				}
				return nil
			})
			// Only the restore's field manager remains: the content is what
			// it was.
			h.Unchanged(foreign)
		}})
	Register(Case{Category: "foreign", Kind: "ProxyPolicy", Mesh: Istio, Name: "a workload Meshplane owns is never selected",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, map[string]string{"app.kubernetes.io/managed-by": "meshplane", "meshplane.io/owner": "canary." + ns + ".web"})
			foreign := h.Snapshot(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
			p := GoodProxyPolicy(ns, "web", Istio)
			h.Create(p)
			h.Ready(p)
			h.Unchanged(foreign)
		}})
	Register(Case{Category: "foreign", Kind: "ProxyPolicy", Mesh: Istio, Name: "a foreign Sidecar with the output's name",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			sc := &istionetworking.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-proxy"}}
			sc.Spec.Egress = nil
			h.Create(sc)
			before := proxyInventory(h, ns)
			foreign := h.Snapshot(sc, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
			p := GoodProxyPolicy(ns, "web", Istio)
			scope(p, "./*")
			h.Create(p)
			h.Stalled(p, meshv1alpha1.ConflictReason, "Sidecar "+ns+"/web-proxy already exists and was not created by Meshplane; it is never taken over")
			sameProxy(h, ns, before)
			h.Unchanged(foreign)
			h.Control("ProxyPolicy", Istio)
		}})
	Register(Case{Category: "drift", Kind: "ProxyPolicy", Mesh: Istio, Name: "annotation edited by hand is repaired",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			p := GoodProxyPolicy(ns, "web", Istio)
			h.Create(p)
			h.Ready(p)
			d := &appsv1.Deployment{}
			h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d))
			d.Spec.Template.Annotations[proxyCPU] = "3"
			h.Must(h.C.Update(h.Ctx, d, client.FieldOwner("kubectl-edit")))
			h.Eventually("repaired", func() error {
				if v := podAnnotations(h, ns, "web")[proxyCPU]; v != "100m" {
					return fmt.Errorf("proxyCPU %q", v)
				}
				return nil
			})
		}})
}

// registerProxyOverlapAndIncident: overlapping policies and a BreakGlass.
func registerProxyOverlapAndIncident() {
	Register(Case{Category: "overlap", Kind: "ProxyPolicy", Mesh: Istio, Name: "two policies select one workload",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			first := GoodProxyPolicy(ns, "first", Istio)
			h.Create(first)
			h.Ready(first)
			before := proxyInventory(h, ns)
			second := GoodProxyPolicy(ns, "second", Istio)
			second.Spec.Selector = nil
			second.Spec.Resources.CPURequest = "300m"
			h.Create(second)
			h.Stalled(second, meshv1alpha1.ConflictReason, "ProxyPolicy first (selector app=web) already configures the proxies of workloads this policy selects (the whole namespace)")
			delete(before, "ProxyPolicy/second")
			sameProxy(h, ns, before)
			h.Control("ProxyPolicy", Istio)
		}})
	Register(Case{Category: "overlap", Kind: "ProxyPolicy", Mesh: Istio, Name: "egress scope beside an EgressPolicy",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			eg := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "egress", Namespace: ns},
				Spec: meshv1alpha1.EgressPolicySpec{Rules: []meshv1alpha1.EgressRule{{Hosts: []string{"api.example.com"},
					Ports: []meshv1alpha1.EgressPort{{Number: 443, Protocol: meshv1alpha1.EgressTLS}}}}}}
			h.Create(eg)
			h.Ready(eg)
			before := proxyInventory(h, ns)
			p := GoodProxyPolicy(ns, "scope", Istio)
			scope(p, "./*")
			h.Create(p)
			h.Stalled(p, meshv1alpha1.ConflictReason, "EgressPolicy egress (the whole namespace) already sets the outbound configuration of workloads this policy's egressScope applies to (selector app=web)",
				"remove spec.egressScope")
			sameProxy(h, ns, before)
			h.Control("ProxyPolicy", Istio)
		}})
	Register(Case{Category: "breakglass", Kind: "ProxyPolicy", Mesh: Istio, Name: "scope widened, nothing rolled out, restored exactly",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			proxyWorkload(h, ns, "web", nil, nil)
			p := GoodProxyPolicy(ns, "web", Istio)
			scope(p, "./*")
			h.Create(p)
			h.Ready(p)
			sc := &istionetworking.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-proxy"}}
			scoped := h.Snapshot(sc, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}})
			bg := GoodBreakGlass(Istio, ns)
			h.Create(bg)
			h.phase(bg, meshv1alpha1.BreakGlassEngaged)
			h.Eventually("Sidecar widened", func() error {
				cur := &istionetworking.Sidecar{}
				h.Must(h.C.Get(h.Ctx, keyOf(sc), cur))
				if hosts := cur.Spec.GetEgress(); len(hosts) != 1 || strings.Join(hosts[0].GetHosts(), ",") != "*/*" {
					return fmt.Errorf("egress %v", hosts)
				}
				return nil
			})
			// A spec change during the incident writes nothing.
			web := podAnnotations(h, ns, "web")
			h.Must(h.Update(p, func() { p.Spec.Resources.CPURequest = "200m" }))
			h.Condition(p, meshv1alpha1.BreakGlassActiveCondition, metav1.ConditionTrue, meshv1alpha1.BreakGlassActiveReason, "nothing is written and no rollout starts")
			h.Consistently(2*time.Second, "no rollout during the incident", func() error {
				if got := podAnnotations(h, ns, "web"); !maps.Equal(got, web) {
					return fmt.Errorf("annotations %v, were %v", got, web)
				}
				return nil
			})
			h.Must(h.Update(p, func() { p.Spec.Resources.CPURequest = "100m" }))
			h.glassGone(bg)
			h.Ready(p)
			h.Eventually("Sidecar restored", func() error {
				if h.content(sc) != scoped.state[describe(sc)] {
					return fmt.Errorf("Sidecar %s", h.content(sc))
				}
				return nil
			})
			h.Unchanged(scoped)
		}})
}
