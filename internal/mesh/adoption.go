package mesh

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Enrolment is how a mesh brings a namespace into its data plane: the
// namespace labels and annotations to set, the ones to clear because they
// would select another data plane, and whether workloads must restart to
// join (sidecars are injected when a pod is created).
type Enrolment struct {
	// Labels and Annotations are set on the namespace.
	Labels, Annotations map[string]string
	// ClearLabels and ClearAnnotations are removed from the namespace.
	ClearLabels, ClearAnnotations []string
	// Restart says workloads restart to join (sidecar injection).
	Restart bool
	// RestartWhenCleared says workloads restart when a cleared label or
	// annotation was present: they leave another data plane's sidecar
	// (Istio sidecar → ambient).
	RestartWhenCleared bool
	// Describe says what enrolment means, for status and events, e.g.
	// "label istio-injection=enabled".
	Describe string
	// WouldBeDenied is the mesh's built-in PromQL query of the requests
	// a namespace's policies in Audit would have denied, with the
	// placeholders {{ namespace }} and {{ interval }} (MeshAdoption's
	// audit window); it returns one number, 0 when there were none.
	// Empty when policies cannot run in Audit in this mode.
	WouldBeDenied string
	// NoAudit says why policies cannot run in Audit in this mode, when
	// WouldBeDenied is empty.
	NoAudit string
	// WaypointLabel is the namespace label naming the waypoint that serves
	// L7 in this mode (Istio ambient), empty when the mode needs none. A
	// MeshAdoption moving a namespace whose objects need L7 creates the
	// waypoint (WaypointInstaller) and sets this label in the same
	// recorded patch as the enrolment.
	WaypointLabel string
}

// AuditHoldAnnotation is the namespace annotation a MeshAdoption sets, to
// its own name, while a wave audits: every ZeroTrustPolicy of the
// namespace is translated in Audit, whatever its spec.enforcement says,
// and reports the hold in status.auditHeldBy. Removing it promotes the
// policies to their own spec.enforcement.
const AuditHoldAnnotation = "meshplane.io/audit-hold"

// AuditHoldProviderAnnotation is set with AuditHoldAnnotation, to the
// provider of the adoption's MeshInstall, and removed with it: a
// namespace held before it is labelled is in no mesh yet, so its
// ZeroTrustPolicies that name no provider resolve to this one while the
// hold lasts (HeldProvider).
const AuditHoldProviderAnnotation = "meshplane.io/audit-hold-provider"

// HeldProvider returns the provider a namespace's ZeroTrustPolicies that
// name no provider resolve to while a MeshAdoption holds the namespace in
// Audit before labelling it, and false when it holds none.
func HeldProvider(ns map[string]string) (meshv1alpha1.Provider, bool) {
	p := ns[AuditHoldProviderAnnotation]
	return meshv1alpha1.Provider(p), ns[AuditHoldAnnotation] != "" && p != ""
}

// Effective returns the policy as the mesh must enforce it in namespace ns:
// a copy in Audit, and the MeshAdoption holding it, while ns carries
// AuditHoldAnnotation; otherwise p itself and "". p is never modified.
func Effective(p *meshv1alpha1.ZeroTrustPolicy, ns map[string]string) (*meshv1alpha1.ZeroTrustPolicy, string) {
	holder := ns[AuditHoldAnnotation]
	if holder == "" {
		return p, ""
	}
	if Audit(&p.Spec) {
		return p, holder
	}
	held := p.DeepCopy()
	held.Spec.Enforcement = meshv1alpha1.EnforcementAudit
	return held, holder
}

// Enroller is implemented by meshes whose data plane a namespace joins
// through its labels or annotations (MeshAdoption). A mesh that serves
// every namespace (Cilium as the CNI) has nothing to enrol and does not
// implement it.
type Enroller interface {
	Installer
	// Enrolment returns how a namespace joins mi's data plane in mode
	// (empty: the install's profile). An error is terminal: the mode
	// cannot be served by this install, with the fix in its message.
	Enrolment(mi *meshv1alpha1.MeshInstall, mode meshv1alpha1.Profile) (Enrolment, error)
}

// Enroller returns the named provider's Enroller.
func (r *Registry) Enroller(name meshv1alpha1.Provider) (Enroller, error) {
	return lookup[Enroller](r, name, "namespace enrolment (MeshAdoption)")
}

// Explainer is implemented by meshes that say why they lack a capability
// (Cilium: no per-policy audit); Check puts the reason in its refusal.
type Explainer interface {
	// Explain returns why the mesh cannot express c, or "".
	Explain(c Capability) string
}

func explain(p Provider, c Capability) string {
	if x, ok := p.(Explainer); ok {
		return x.Explain(c)
	}
	return ""
}

// Audit reports whether a ZeroTrustPolicy runs in audit.
func Audit(spec *meshv1alpha1.ZeroTrustPolicySpec) bool {
	return spec.Enforcement == meshv1alpha1.EnforcementAudit
}
