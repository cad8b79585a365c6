package mesh

import (
	"slices"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Capability names one feature of the mesh-agnostic API that a mesh may or
// may not be able to express.
type Capability string

// Traffic capabilities (TrafficSplit, Canary routing).
const (
	// CapServiceRouting routes a Service's traffic at all: every
	// TrafficSplit and Canary needs it.
	CapServiceRouting Capability = "ServiceRouting"
	// CapWeightedRouting splits traffic between backends by weight.
	CapWeightedRouting Capability = "WeightedRouting"
	// CapHeaderMatchExact matches a header value exactly.
	CapHeaderMatchExact Capability = "HeaderMatchExact"
	// CapHeaderMatchPrefix matches a header value by prefix.
	CapHeaderMatchPrefix Capability = "HeaderMatchPrefix"
	// CapHeaderMatchRegex matches a header value by regular expression.
	CapHeaderMatchRegex Capability = "HeaderMatchRegex"
	// CapPathMatch matches the request path (exact or prefix).
	CapPathMatch Capability = "PathMatch"
	// CapMethodMatch matches the request method.
	CapMethodMatch Capability = "MethodMatch"
	// CapMirroring mirrors all requests to a shadow backend.
	CapMirroring Capability = "Mirroring"
	// CapMirrorPercent mirrors a percentage of the requests.
	CapMirrorPercent Capability = "MirrorPercent"
	// CapRequestTimeout bounds a whole request.
	CapRequestTimeout Capability = "RequestTimeout"
	// CapRetries retries failed requests a number of times.
	CapRetries Capability = "Retries"
	// CapRetryPerTryTimeout bounds each retry attempt.
	CapRetryPerTryTimeout Capability = "RetryPerTryTimeout"
	// CapRetryConditions selects the conditions that trigger a retry.
	CapRetryConditions Capability = "RetryConditions"
	// CapOrderedRules keeps the rules' list order even where a later rule
	// is more specific than an earlier one (Gateway API ranks by
	// specificity first).
	CapOrderedRules Capability = "OrderedRules"
	// CapGatewayAPIOutput produces Gateway API HTTPRoutes (GAMMA).
	CapGatewayAPIOutput Capability = "GatewayAPIOutput"
	// CapNativeRoutingOutput produces the mesh's own routing API.
	CapNativeRoutingOutput Capability = "NativeRoutingOutput"
)

// Policy capabilities (ZeroTrustPolicy).
const (
	// CapMTLSStrict enforces mutual TLS.
	CapMTLSStrict Capability = "MTLSStrict"
	// CapMTLSPermissive accepts plain text beside mTLS.
	CapMTLSPermissive Capability = "MTLSPermissive"
	// CapPerWorkloadMTLSMode sets the mTLS mode for a workload selector
	// rather than the whole namespace.
	CapPerWorkloadMTLSMode Capability = "PerWorkloadMTLSMode"
	// CapDefaultDeny denies traffic no rule allows.
	CapDefaultDeny Capability = "DefaultDeny"
	// CapAllowFromServiceAccount allows callers by service account identity.
	CapAllowFromServiceAccount Capability = "AllowFromServiceAccount"
	// CapAllowFromNamespace allows callers by namespace.
	CapAllowFromNamespace Capability = "AllowFromNamespace"
	// CapAllowToPort narrows an allow rule to ports.
	CapAllowToPort Capability = "AllowToPort"
	// CapAllowAnyPort allows a rule without to.ports (every port of the
	// workload) under defaultAction Deny.
	CapAllowAnyPort Capability = "AllowAnyPort"
	// CapAllowHTTPMethodPath narrows an allow rule to HTTP methods and paths.
	CapAllowHTTPMethodPath Capability = "AllowHTTPMethodPath"
	// CapPolicyAudit runs a policy in audit: nothing blocked, would-be
	// denials reported (ZeroTrustPolicy spec.enforcement Audit).
	CapPolicyAudit Capability = "PolicyAudit"
)

// Lifecycle and trust capabilities (MeshInstall, MeshRevision,
// MeshFederation, BreakGlass).
const (
	// CapHelmInstall installs the mesh from Helm charts.
	CapHelmInstall Capability = "HelmInstall"
	// CapRevisions runs control-plane revisions side by side.
	CapRevisions Capability = "Revisions"
	// CapAmbient runs the ambient (sidecar-less) data plane.
	CapAmbient Capability = "Ambient"
	// CapInPlaceUpgrade upgrades the control plane in place.
	CapInPlaceUpgrade Capability = "InPlaceUpgrade"
	// CapSharedRootCA accepts an intermediate CA from an external root.
	CapSharedRootCA Capability = "SharedRootCA"
	// CapTrustBundle accepts a bundle of several roots.
	CapTrustBundle Capability = "TrustBundle"
	// CapDetachInjection can stop sidecar injection per namespace.
	CapDetachInjection Capability = "DetachInjection"
)

// AllCapabilities lists every capability in documentation order.
var AllCapabilities = []Capability{
	CapServiceRouting, CapWeightedRouting, CapHeaderMatchExact, CapHeaderMatchPrefix, CapHeaderMatchRegex,
	CapPathMatch, CapMethodMatch, CapMirroring, CapMirrorPercent, CapRequestTimeout,
	CapRetries, CapRetryPerTryTimeout, CapRetryConditions, CapOrderedRules, CapGatewayAPIOutput, CapNativeRoutingOutput,
	CapMTLSStrict, CapMTLSPermissive, CapPerWorkloadMTLSMode, CapDefaultDeny,
	CapAllowFromServiceAccount, CapAllowFromNamespace, CapAllowToPort, CapAllowAnyPort, CapAllowHTTPMethodPath,
	CapPolicyAudit,
	CapHelmInstall, CapRevisions, CapAmbient, CapInPlaceUpgrade, CapSharedRootCA, CapTrustBundle,
	CapDetachInjection,
	CapEgressAllowList, CapEgressAudit, CapEgressHTTPHosts, CapEgressTLSHosts, CapEgressTCPHosts,
	CapEgressWildcardHosts, CapEgressCIDRs, CapEgressPerWorkload, CapEgressGateway,
	CapJWTAuthentication, CapJWTRules,
}

// Capabilities is the set of features a mesh can express.
type Capabilities map[Capability]bool

// NewCapabilities returns the set holding caps.
func NewCapabilities(caps ...Capability) Capabilities {
	c := make(Capabilities, len(caps))
	for _, cp := range caps {
		c[cp] = true
	}
	return c
}

// Has reports whether the set holds c.
func (c Capabilities) Has(cp Capability) bool { return c[cp] }

// Missing returns the capabilities of required that the set lacks, sorted,
// without duplicates.
func (c Capabilities) Missing(required ...Capability) []Capability {
	var out []Capability
	for _, r := range required {
		if !c[r] && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Check returns an *UnsupportedFeatureError naming every required
// capability the provider lacks, or nil.
func Check(p Provider, required ...Capability) error {
	missing := p.Capabilities().Missing(required...)
	if len(missing) == 0 {
		return nil
	}
	detail := detailOf(missing)
	if x := explain(p, missing[0]); x != "" {
		detail = strings.TrimPrefix(detail+"; "+x, "; ")
	}
	return &UnsupportedFeatureError{Provider: p.Name(), Features: missing, Detail: detail}
}

// UnsupportedFeatureError says that a spec uses features the selected mesh
// cannot express. It is terminal: nothing was applied.
type UnsupportedFeatureError struct {
	// Provider is the selected mesh.
	Provider meshv1alpha1.Provider
	// Features are the capabilities it lacks.
	Features []Capability
	// Detail optionally explains the first feature further.
	Detail string
	// Where, when set, names the install and namespace the decision was
	// made for (an install-aware refusal), e.g. "Cilium as installed by
	// MeshInstall cilium in namespace shop (CiliumNode data plane)".
	Where string
	// Fix, when set, says what to change in the install or the namespace
	// for the feature to be enforced.
	Fix string
}

// Error names the features and the mesh, and what to change.
func (e *UnsupportedFeatureError) Error() string {
	names := make([]string, len(e.Features))
	for i, f := range e.Features {
		names[i] = string(f)
	}
	where := string(e.Provider)
	if e.Where != "" {
		where = e.Where
	}
	msg := "feature " + strings.Join(names, ", ") + " is not supported by " + where
	if len(names) > 1 {
		msg = "features " + strings.Join(names, ", ") + " are not supported by " + where
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Fix != "" {
		return msg + ": " + e.Fix + ", or remove the feature from the spec (nothing was applied)"
	}
	return msg + "; remove the feature from the spec or choose another provider (nothing was applied)"
}

// StalledReason makes the error terminal with reason UnsupportedFeature.
func (e *UnsupportedFeatureError) StalledReason() string {
	return meshv1alpha1.UnsupportedFeatureReason
}
