package v1alpha1

// PolicyEnforcement says whether a ZeroTrustPolicy blocks or only reports.
// Audit translates to each mesh's non-blocking form: Istio sidecar
// AuthorizationPolicies carry istio.io/dry-run and mTLS is PERMISSIVE
// (STRICT would refuse plain-text callers); Linkerd's namespace
// default-inbound-policy and Servers' accessPolicy are audit. Cilium has no
// per-policy audit mode (cilium/cilium#9580), and Istio ambient namespaces
// are refused (ztunnel's handling of dry-run depends on its version): both
// are UnsupportedFeature.
// +kubebuilder:validation:Enum=Enforce;Audit
type PolicyEnforcement string

// Policy enforcement modes.
const (
	// EnforcementEnforce blocks what the policy does not allow.
	EnforcementEnforce PolicyEnforcement = "Enforce"
	// EnforcementAudit blocks nothing and reports would-be denials.
	EnforcementAudit PolicyEnforcement = "Audit"
)
