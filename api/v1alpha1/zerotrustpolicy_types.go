package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MTLSMode is the mutual-TLS mode enforced on the selected workloads.
// +kubebuilder:validation:Enum=Strict;Permissive
type MTLSMode string

const (
	// MTLSStrict accepts only mutually authenticated mesh traffic.
	MTLSStrict MTLSMode = "Strict"
	// MTLSPermissive also accepts plain-text traffic.
	MTLSPermissive MTLSMode = "Permissive"
)

// PolicyAction is what happens to traffic no rule allows.
// +kubebuilder:validation:Enum=Deny;Allow
type PolicyAction string

const (
	// ActionDeny denies traffic no rule allows (default).
	ActionDeny PolicyAction = "Deny"
	// ActionAllow allows all traffic; rules are then informational.
	ActionAllow PolicyAction = "Allow"
)

// MTLSSettings configures mutual TLS.
type MTLSSettings struct {
	// mode is Strict (default) or Permissive.
	// +optional
	// +kubebuilder:default=Strict
	Mode MTLSMode `json:"mode,omitempty"`
}

// TrafficSource identifies callers. serviceAccounts and namespaces are
// ORed.
// +kubebuilder:validation:XValidation:rule="(has(self.serviceAccounts) && size(self.serviceAccounts) > 0) || (has(self.namespaces) && size(self.namespaces) > 0)",message="a source needs serviceAccounts or namespaces"
type TrafficSource struct {
	// serviceAccounts as "namespace/name", or "name" for the policy's own
	// namespace.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=127
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// namespaces whose workloads are allowed.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`
}

// TrafficDestination narrows what a rule allows on the selected workloads.
// +kubebuilder:validation:XValidation:rule="has(self.ports) || has(self.methods) || has(self.paths)",message="a destination needs ports, methods or paths"
type TrafficDestination struct {
	// ports of the workload (container ports).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports,omitempty"`

	// methods allowed (HTTP only).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	Methods []HTTPMethod `json:"methods,omitempty"`

	// paths allowed (HTTP only); a trailing "*" makes a prefix.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:items:Pattern=`^/`
	Paths []string `json:"paths,omitempty"`
}

// AllowRule allows traffic from any of its sources to any of its
// destinations. An empty list means "any".
// +kubebuilder:validation:XValidation:rule="has(self.from) || has(self.to) || has(self.requestPrincipals) || has(self.claims)",message="a rule needs from, to, requestPrincipals or claims"
type AllowRule struct {
	// name of the rule, used in output resource names.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// from lists the allowed callers.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	From []TrafficSource `json:"from,omitempty"`

	// to lists the allowed ports, methods and paths.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	To []TrafficDestination `json:"to,omitempty"`

	// requestPrincipals requires a request token (spec.jwt) whose
	// principal, "<issuer>/<subject>", is one of these; "*" accepts any
	// valid token. ANDed with from and to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	RequestPrincipals []string `json:"requestPrincipals,omitempty"`

	// claims requires a request token (spec.jwt) whose claims have one of
	// the listed values each; ANDed with from, to and requestPrincipals.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Claims []JWTClaim `json:"claims,omitempty"`
}

// JWTClaim matches one top-level claim of the request token.
type JWTClaim struct {
	// name of the claim, e.g. groups.
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_.:-]*$`
	Name string `json:"name"`

	// values of which the claim must have one (a list claim: contain one).
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	Values []string `json:"values"`
}

// JWTHeader is a request header that carries the token.
type JWTHeader struct {
	// name of the header, e.g. Authorization.
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`

	// prefix before the token, e.g. "Bearer ".
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Prefix string `json:"prefix,omitempty"`
}

// JWTIssuer is one issuer whose tokens are accepted.
// +kubebuilder:validation:XValidation:rule="has(self.jwksURI) != has(self.jwks)",message="an issuer needs exactly one of jwksURI or jwks"
type JWTIssuer struct {
	// issuer is the token's iss claim, e.g. https://auth.example.com.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Issuer string `json:"issuer"`

	// jwksURI is where the issuer's public keys are fetched (https).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="jwksURI must be an https URL"
	JWKSURI string `json:"jwksURI,omitempty"`

	// jwks is the issuer's JSON Web Key Set, inline.
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	// +kubebuilder:validation:XValidation:rule="self.startsWith('{') && self.contains('\"keys\"')",message="jwks must be a JSON Web Key Set object with keys"
	JWKS string `json:"jwks,omitempty"`

	// audiences the token's aud claim must contain one of; any when unset.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Audiences []string `json:"audiences,omitempty"`

	// fromHeaders are the headers the token is read from; Authorization
	// with prefix "Bearer " when neither fromHeaders nor fromParams is set.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	FromHeaders []JWTHeader `json:"fromHeaders,omitempty"`

	// fromParams are query parameters the token is read from.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_.-]{1,63}$`
	FromParams []string `json:"fromParams,omitempty"`

	// forwardOriginalToken keeps the token in the request passed to the
	// workload (it is removed by default).
	// +optional
	ForwardOriginalToken bool `json:"forwardOriginalToken,omitempty"`
}

// JWTSettings authenticates requests by JSON Web Token. A request with an
// invalid token is rejected; a request without one is allowed only where
// no rule asks for requestPrincipals or claims (use them with
// defaultAction Deny to require a token).
type JWTSettings struct {
	// issuers whose tokens are accepted.
	// +required
	// +listType=map
	// +listMapKey=issuer
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Issuers []JWTIssuer `json:"issuers"`
}

// RolloutRestart is an opt-in, batched restart of the workloads whose
// proxies started with a previous policy setting.
type RolloutRestart struct {
	// enabled turns the restarts on.
	// +required
	Enabled bool `json:"enabled"`

	// batchSize is how many workloads restart at once; the next batch
	// starts when the previous one is ready again.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	BatchSize int32 `json:"batchSize,omitempty"`

	// pause is the least time between two batches; 5s by default.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('1h')",message="rolloutRestart.pause must be between 0s and 1h"
	Pause *metav1.Duration `json:"pause,omitempty"`
}

// ZeroTrustPolicySpec is the mTLS mode, default action and allow rules for
// the workloads a selector picks.
// +kubebuilder:validation:XValidation:rule="!has(self.defaultAction) || self.defaultAction == 'Deny' || !has(self.rules) || size(self.rules) == 0",message="rules have no effect with defaultAction Allow; remove them or use Deny"
// +kubebuilder:validation:XValidation:rule="has(self.jwt) || !has(self.rules) || self.rules.all(r, !has(r.requestPrincipals) && !has(r.claims))",message="rules with requestPrincipals or claims need spec.jwt (the issuers whose tokens are validated)"
type ZeroTrustPolicySpec struct {
	MeshSelection `json:",inline"`

	// selector picks the workloads (pods) the policy protects; the whole
	// namespace when unset.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// mtls sets the mutual-TLS mode; Strict by default.
	// +optional
	MTLS *MTLSSettings `json:"mtls,omitempty"`

	// defaultAction for traffic no rule allows; Deny by default.
	// +optional
	// +kubebuilder:default=Deny
	DefaultAction PolicyAction `json:"defaultAction,omitempty"`

	// rules allow traffic.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Rules []AllowRule `json:"rules,omitempty"`

	// rolloutRestart restarts, in batches, the workloads whose running
	// pods still enforce a setting of the policy that their proxies read
	// only when they start (Linkerd's default inbound policy; the
	// ProxiesCurrent condition names them). Off unless enabled.
	// +optional
	RolloutRestart *RolloutRestart `json:"rolloutRestart,omitempty"`

	// enforcement is Enforce (the default: the policy blocks what it does
	// not allow) or Audit (nothing is blocked; the mesh reports what would
	// be denied). See PolicyEnforcement for each mesh's audit form.
	// +optional
	Enforcement PolicyEnforcement `json:"enforcement,omitempty"`

	// jwt validates request tokens (JSON Web Tokens) of the issuers listed;
	// rules' requestPrincipals and claims match them. Istio only.
	// +optional
	JWT *JWTSettings `json:"jwt,omitempty"`
}

// ZeroTrustPolicyStatus is the observed state of a ZeroTrustPolicy.
type ZeroTrustPolicyStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the policy was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// mode is the effective mTLS mode and default action, e.g.
	// "Strict/Deny".
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Mode string `json:"mode,omitempty"`

	// inventory lists the objects written for this policy.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Inventory []ObjectReference `json:"inventory,omitempty"`

	// sharedFields lists the fields of objects Meshplane did not create
	// that this policy set (a mesh's namespace-wide default annotation),
	// with their previous values; deleting the policy restores them. They
	// are recorded before the field is first written.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	SharedFields []SharedField `json:"sharedFields,omitempty"`

	// auditHeldBy names the MeshAdoption that holds the policy in Audit
	// while its wave audits (the namespace annotation
	// meshplane.io/audit-hold); the outputs are then the Audit form,
	// whatever spec.enforcement says. Empty when not held.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	AuditHeldBy string `json:"auditHeldBy,omitempty"`
}

// ZeroTrustPolicy sets mTLS, default-deny and allow rules for workloads, on
// any mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ztp,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ZeroTrustPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired policy.
	// +required
	Spec ZeroTrustPolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status ZeroTrustPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ZeroTrustPolicyList is a list of ZeroTrustPolicies.
type ZeroTrustPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ZeroTrustPolicy `json:"items"`
}

func init() {
	register(&ZeroTrustPolicy{}, &ZeroTrustPolicyList{})
}
