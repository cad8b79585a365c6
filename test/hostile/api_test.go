package hostile

import (
	"fmt"
	"strings"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// API cases (issue 14 defects 1 and 6): every duration refuses what is not
// a Go duration and values out of its bounds; every object-name reference
// refuses a namespace/name, an empty label, upper case and an over-long
// name; objects stored before those rules existed are Stalled with a
// message naming the field, and stop nothing else.

// Bases of each kind; NS is replaced by the case's namespace.
var apiBases = map[string]string{
	"MeshInstall":    "{apiVersion: meshplane.io/v1alpha1, kind: MeshInstall, metadata: {name: NAME}, spec: {provider: Istio, version: 1.28.1}}",
	"LinkerdMesh":    "{apiVersion: meshplane.io/v1alpha1, kind: MeshInstall, metadata: {name: NAME}, spec: {provider: Linkerd, version: edge-26.1.1}}",
	"MeshRevision":   "{apiVersion: meshplane.io/v1alpha1, kind: MeshRevision, metadata: {name: NAME}, spec: {meshInstallRef: {name: istio}, version: 1.29.0}}",
	"TrafficSplit":   "{apiVersion: meshplane.io/v1alpha1, kind: TrafficSplit, metadata: {name: NAME, namespace: NS}, spec: {service: {name: web, port: 8080}, backends: [{name: web-v1, weight: 90}, {name: web-v2, weight: 10}]}}",
	"Canary":         "{apiVersion: meshplane.io/v1alpha1, kind: Canary, metadata: {name: NAME, namespace: NS}, spec: {targetRef: {name: web}, service: {port: 8080}, analysis: {stepWeight: 50, maxWeight: 100}}}",
	"MeshFederation": "{apiVersion: meshplane.io/v1alpha1, kind: MeshFederation, metadata: {name: NAME}, spec: {root: {generate: {}}, clusters: [{name: local, provider: Istio}]}}",
	"BreakGlass":     "{apiVersion: meshplane.io/v1alpha1, kind: BreakGlass, metadata: {name: NAME}, spec: {reason: istiod down, target: {provider: Istio}}}",
}

// apiObject builds base (apiBases key) named name in ns with the YAML value
// set at the dot path.
func apiObject(h *H, base, name, ns, path, value string) *unstructured.Unstructured {
	h.Helper()
	doc := strings.NewReplacer("NAME", name, "NS", ns).Replace(apiBases[base])
	u := testenv.Parse(h.T, doc)
	var v any
	h.Must(yaml.Unmarshal([]byte(value), &v))
	parts := strings.Split(path, ".")
	cur := u.Object
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
	return u
}

// apiDuration is one metav1.Duration field: where it is set, the path the
// API server names, its message name and bounds.
type apiDuration struct {
	kind, base, set, path, name, min, max string
	wrap                                  string // fmt pattern for the value set at set; %q otherwise
}

var apiDurations = []apiDuration{
	{"MeshFederation", "MeshFederation", "spec.root.generate.lifetime", "spec.root.generate.lifetime", "lifetime", "1h", "175200h", ""},
	{"MeshFederation", "MeshFederation", "spec.intermediate.lifetime", "spec.intermediate.lifetime", "lifetime", "1h", "87600h", ""},
	{"MeshFederation", "MeshFederation", "spec.intermediate.renewBefore", "spec.intermediate.renewBefore", "renewBefore", "1m", "87600h", ""},
	{"MeshFederation", "MeshFederation", "spec.rotation.rootRenewBefore", "spec.rotation.rootRenewBefore", "rootRenewBefore", "1h", "87600h", ""},
	{"MeshFederation", "MeshFederation", "spec.rotation.minPhaseWait", "spec.rotation.minPhaseWait", "minPhaseWait", "0s", "168h", ""},
	{"TrafficSplit", "TrafficSplit", "spec.retries", "spec.retries.perTryTimeout", "perTryTimeout", "1ms", "1h", "{attempts: 2, perTryTimeout: %q}"},
	{"MeshInstall", "MeshInstall", "spec.upgrade.revisionRetention", "spec.upgrade.revisionRetention", "revisionRetention", "0s", "8760h", ""},
	{"MeshInstall", "MeshInstall", "spec.upgrade.rollout.pauseBetweenBatches", "spec.upgrade.rollout.pauseBetweenBatches", "pauseBetweenBatches", "0s", "24h", ""},
	{"MeshInstall", "MeshInstall", "spec.upgrade.rollout.healthTimeout", "spec.upgrade.rollout.healthTimeout", "healthTimeout", "1s", "24h", ""},
	{"MeshInstall", "LinkerdMesh", "spec.linkerd.identity.issuerLifetime", "spec.linkerd.identity.issuerLifetime", "issuerLifetime", "1h", "87600h", ""},
	{"BreakGlass", "BreakGlass", "spec.expiresAfter", "spec.expiresAfter", "expiresAfter", "1m", "8760h", ""},
	{"TrafficSplit", "TrafficSplit", "spec.timeout", "spec.timeout", "timeout", "1ms", "1h", ""},
	{"Canary", "Canary", "spec.service.timeout", "spec.service.timeout", "timeout", "1ms", "1h", ""},
	{"Canary", "Canary", "spec.analysis.metrics", "spec.analysis.metrics[0].interval", "interval", "1s", "24h", "[{name: errors, query: 'sum(x)', thresholdRange: {max: '1'}, interval: %q}]"},
	{"Canary", "Canary", "spec.analysis.webhooks", "spec.analysis.webhooks[0].timeout", "timeout", "1ms", "5m", "[{name: gate, type: rollout, url: 'http://gate.shop', timeout: %q}]"},
	{"Canary", "Canary", "spec.analysis.interval", "spec.analysis.interval", "interval", "1s", "24h", ""},
	{"Canary", "Canary", "spec.progressDeadline", "spec.progressDeadline", "progressDeadline", "1s", "24h", ""},
}

func (d apiDuration) value(v string) string {
	if d.wrap != "" {
		return fmt.Sprintf(d.wrap, v)
	}
	return fmt.Sprintf("%q", v)
}

func notADuration(path, name, v string) string {
	return fmt.Sprintf(`%s: Invalid value: %q: %s %q is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)`, path, v, name, v)
}

// namespaced reports whether base is a namespaced kind.
func namespaced(base string) bool { return base == "TrafficSplit" || base == "Canary" }

// refuseAPI creates the object and asserts the exact refusal and that
// nothing was written in its namespace.
func refuseAPI(h *H, base, path, value, want string) {
	h.Helper()
	ns := ""
	var before Inventory
	if namespaced(base) {
		ns = h.Namespace(AnyMesh)
		before = h.Inventory(ns)
	}
	name := fmt.Sprintf("hostile-%d", apiSeq.Add(1))
	h.Refused(apiObject(h, base, name, ns, path, value), want)
	if namespaced(base) {
		h.Same(ns, before)
	}
}

func init() {
	for _, d := range apiDurations {
		bad := map[string]string{
			"banana":  notADuration(d.path, d.name, "banana"),
			"-5s":     notADuration(d.path, d.name, "-5s"),
			"1y":      notADuration(d.path, d.name, "1y"),
			"876001h": fmt.Sprintf(`%s: Invalid value: "876001h": %s must be between %s and %s; got 876001h`, d.path, d.name, d.min, d.max),
		}
		for v, want := range bad {
			Register(Case{Category: "duration", Kind: d.kind, Mesh: AnyMesh, Name: d.path + " " + v,
				Run: func(h *H) { refuseAPI(h, d.base, d.set, d.value(v), want) }})
		}
	}
	registerRefCases()
	registerDurationUpdates()
	registerStoredBeforeRule()
}

var apiSeq atomic.Int64

// apiRef is one field that names another object.
type apiRef struct {
	kind, base, set, path, object, wrap string
}

var apiRefs = []apiRef{
	{"BreakGlass", "BreakGlass", "spec.target", "spec.target.meshInstallRef.name", "object", "{meshInstallRef: {name: %q}}"},
	{"MeshRevision", "MeshRevision", "spec.meshInstallRef", "spec.meshInstallRef.name", "object", "{name: %q}"},
	{"Canary", "Canary", "spec.targetRef", "spec.targetRef.name", "Deployment", "{name: %q}"},
	{"Canary", "Canary", "spec.analysis.metricsServer", "spec.analysis.metricsServer.secretRef.name", "object", "{address: 'http://prometheus:9090', secretRef: {name: %q}}"},
	{"MeshFederation", "MeshFederation", "spec.root", "spec.root.secretRef.name", "Secret", "{secretRef: {name: %q}}"},
	{"MeshFederation", "MeshFederation", "spec.clusters", "spec.clusters[1].kubeconfigSecretRef.name", "Secret", "[{name: local, provider: Istio}, {name: remote, provider: Istio, kubeconfigSecretRef: {name: %q}}]"},
	{"MeshInstall", "MeshInstall", "spec.chart", "spec.chart.credentialsSecretRef.name", "Secret", "{repository: 'https://charts.example.com', credentialsSecretRef: {name: %q}}"},
	{"MeshInstall", "MeshInstall", "spec.chart", "spec.chart.caSecretRef.name", "Secret", "{repository: 'https://charts.example.com', caSecretRef: {name: %q}}"},
	{"MeshInstall", "LinkerdMesh", "spec.linkerd", "spec.linkerd.identity.trustAnchorSecretRef.name", "Secret", "{identity: {trustAnchorSecretRef: {name: %q}, issuerSecretRef: {name: issuer}}}"},
	{"MeshInstall", "LinkerdMesh", "spec.linkerd", "spec.linkerd.identity.issuerSecretRef.name", "Secret", "{identity: {trustAnchorSecretRef: {name: anchor}, issuerSecretRef: {name: %q}}}"},
}

func registerRefCases() {
	for _, r := range apiRefs {
		for _, v := range []string{"shop/db-credentials", "db..credentials", "DB-Credentials", strings.Repeat("a", 254)} {
			want := fmt.Sprintf(`%s: Invalid value: %q: name %q is not a valid %s name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (a DNS-1123 subdomain); give the name alone, without a namespace/ prefix`, r.path, v, v, r.object)
			label := v
			if len(v) > 250 {
				want, label = r.path+": Too long: may not be more than", "254 characters"
			}
			Register(Case{Category: "name-ref", Kind: r.kind, Mesh: AnyMesh, Name: r.path + " " + label,
				Run: func(h *H) {
					val := fmt.Sprintf(r.wrap, v)
					if r.path == "spec.targetRef.name" {
						// service.name keeps targetRef's Service-name rule out of the way.
						refuseTarget(h, val, want)
						return
					}
					refuseAPI(h, r.base, r.set, val, want)
				}})
		}
	}
}

// refuseTarget is refuseAPI for a Canary with service.name set.
func refuseTarget(h *H, val, want string) {
	h.Helper()
	ns := h.Namespace(AnyMesh)
	before := h.Inventory(ns)
	u := apiObject(h, "Canary", fmt.Sprintf("hostile-%d", apiSeq.Add(1)), ns, "spec.targetRef", val)
	h.Must(unstructured.SetNestedField(u.Object, "web", "spec", "service", "name"))
	h.Refused(u, want)
	h.Same(ns, before)
}

// registerDurationUpdates: a bad duration on an update of a Ready
// TrafficSplit is refused, the previous generation stays Ready and its
// outputs untouched, on every mesh.
func registerDurationUpdates() {
	for _, m := range Meshes {
		for v, want := range map[string]string{
			"banana": notADuration("spec.timeout", "timeout", "banana"),
			"-1s":    notADuration("spec.timeout", "timeout", "-1s"),
		} {
			Register(Case{Category: "duration", Kind: "TrafficSplit", Mesh: m, Name: "update of a Ready split to timeout " + v,
				Run: func(h *H) {
					ns := h.Namespace(m)
					h.Service(ns, "web")
					h.Service(ns, "web-v1")
					h.Service(ns, "web-v2")
					ts := GoodTrafficSplit(ns, "web", m)
					h.Create(ts)
					h.Ready(ts)
					gen, before := ts.Generation, h.Inventory(ns)
					u := &unstructured.Unstructured{}
					u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind("TrafficSplit"))
					u.SetNamespace(ns)
					u.SetName("web")
					h.Rejected(h.Update(u, func() { _ = unstructured.SetNestedField(u.Object, v, "spec", "timeout") }), want)
					h.Ready(ts)
					if ts.Generation != gen || ts.Spec.Timeout != nil {
						h.Fatalf("generation %d -> %d, timeout %v after a refused update", gen, ts.Generation, ts.Spec.Timeout)
					}
					h.Same(ns, before)
				}})
		}
	}
}

// undecodableMessage is the Stalled message of an object stored with one
// undecodable duration.
func undecodableMessage(field, value, ref string) string {
	return fmt.Sprintf(`the stored object cannot be read: %s: %q is not a duration; set a duration such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns). It was written before Meshplane validated these fields and is not reconciled (deletion waits too) until they are corrected: kubectl edit %s`, field, value, ref)
}

// registerStoredBeforeRule: objects stored before their durations were
// validated (Isolated: the CRD is loosened to store them) are Stalled
// naming the field once the manager (re)starts, and stop nothing else.
func registerStoredBeforeRule() {
	Register(Case{Category: "stored-before-rule", Kind: "Canary", Mesh: Istio, Isolated: true, Name: "progressDeadline banana",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			h.Service(ns, "web")
			testenv.StoreUnvalidated(h.T, h.C, apiObject(h, "Canary", "stored", ns, "spec.progressDeadline", "banana"))
			h.StartManager()
			bad := &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stored"}}
			h.Stalled(bad, meshv1alpha1.InvalidSpecReason, undecodableMessage("spec.progressDeadline", "banana", "canary/stored -n "+ns))
			// Other Canaries, here and in another namespace, are reconciled.
			for _, other := range []string{ns, h.Namespace(Istio)} {
				cn := GoodCanary(other, "other", Istio)
				h.Create(cn)
				h.Stalled(cn, meshv1alpha1.ReferenceNotFoundReason, "Deployment "+other+"/other (spec.targetRef) does not exist")
			}
			h.Control("TrafficSplit", Istio)
		}})
	Register(Case{Category: "stored-before-rule", Kind: "MeshInstall", Mesh: Istio, Isolated: true, Name: "healthTimeout of 5 minutes in words",
		Run: func(h *H) {
			testenv.StoreUnvalidated(h.T, h.C, apiObject(h, "MeshInstall", "stored", "", "spec.upgrade.rollout.healthTimeout", "5 minutes"))
			// The manager starts: the MeshInstall cache syncs.
			h.StartManager()
			bad := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "stored"}}
			h.Stalled(bad, meshv1alpha1.InvalidSpecReason, undecodableMessage("spec.upgrade.rollout.healthTimeout", "5 minutes", "meshinstall/stored"))
			h.Control("TrafficSplit", Istio)
			h.Control("ZeroTrustPolicy", Istio)
		}})
	Register(Case{Category: "stored-before-rule", Kind: "TrafficSplit", Mesh: Istio, Isolated: true, Name: "timeout banana, then fixed",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			h.Service(ns, "web")
			h.Service(ns, "web-v1")
			h.Service(ns, "web-v2")
			testenv.StoreUnvalidated(h.T, h.C, apiObject(h, "TrafficSplit", "stored", ns, "spec.timeout", "banana"))
			before := h.Inventory(ns)
			h.StartManager()
			bad := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stored"}}
			h.Stalled(bad, meshv1alpha1.InvalidSpecReason, undecodableMessage("spec.timeout", "banana", "trafficsplit/stored -n "+ns))
			h.Same(ns, before)
			h.Control("TrafficSplit", Istio)
			// Fixing the field is accepted and the split reconciles.
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind("TrafficSplit"))
			u.SetNamespace(ns)
			u.SetName("stored")
			h.Must(h.Update(u, func() { _ = unstructured.SetNestedField(u.Object, "5s", "spec", "timeout") }))
			h.Ready(bad)
		}})
}
