package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider names a service mesh Meshplane can drive.
// +kubebuilder:validation:Enum=Istio;Linkerd;Cilium
type Provider string

const (
	// ProviderIstio is Istio, sidecar or ambient.
	ProviderIstio Provider = "Istio"
	// ProviderLinkerd is Linkerd 2.
	ProviderLinkerd Provider = "Linkerd"
	// ProviderCilium is Cilium with its service-mesh features.
	ProviderCilium Provider = "Cilium"
)

// Providers lists every provider Meshplane knows, in a stable order.
var Providers = []Provider{ProviderIstio, ProviderLinkerd, ProviderCilium}

// LocalObjectReference names an object in the same namespace (or, for a
// cluster-scoped referrer, a cluster-scoped object).
type LocalObjectReference struct {
	// name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",messageExpression=`'name "' + self + '" is not a valid object name: use lower-case letters, digits, \'-\' and \'.\', starting and ending with a letter or digit (a DNS-1123 subdomain); give the name alone, without a namespace/ prefix'`
	Name string `json:"name"`
}

// SecretKeyReference selects a Secret, and optionally one key of it. The
// Secret lives in the operator namespace for cluster-scoped referrers and in
// the referrer's namespace otherwise: there is deliberately no namespace
// field, so Meshplane needs no cluster-wide Secret access and a user cannot
// point it at another team's Secrets.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",messageExpression=`'name "' + self + '" is not a valid Secret name: use lower-case letters, digits, \'-\' and \'.\', starting and ending with a letter or digit (a DNS-1123 subdomain); give the name alone, without a namespace/ prefix'`
	Name string `json:"name"`

	// key within the Secret. Each referrer documents its default.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// ObjectReference identifies one object Meshplane wrote, for the inventory
// that makes pruning exact.
type ObjectReference struct {
	// apiVersion of the object, group/version (or version for the core group).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	APIVersion string `json:"apiVersion"`

	// kind of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`

	// namespace of the object; empty for cluster-scoped objects.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SharedField is one field Meshplane set on an object it did not create (a
// Namespace's annotation or label), with the value the field held before:
// releasing the field restores that value.
type SharedField struct {
	// object holds the field.
	// +required
	Object ObjectReference `json:"object"`

	// field is the field's path: metadata.annotations[<key>] or
	// metadata.labels[<key>].
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=340
	Field string `json:"field"`

	// previous is the value the field held before Meshplane set it; unset
	// when the field was absent (releasing it then removes it).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Previous *string `json:"previous,omitempty"`
}

// ServiceReference names a Service in the referrer's namespace and,
// optionally, one of its ports.
type ServiceReference struct {
	// name of the Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port of the Service. Required when the Service exposes more than one
	// port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// MeshSelection is embedded by the namespaced kinds that are translated into
// one mesh's resources.
type MeshSelection struct {
	// provider forces the mesh this object is translated for. When unset,
	// the mesh serving the object's namespace is discovered from namespace
	// labels (istio-injection, istio.io/rev, istio.io/dataplane-mode,
	// linkerd.io/inject) and the MeshInstalls present; no mesh, or two that
	// conflict, leaves the object Stalled with reason ProviderNotResolved.
	// +optional
	Provider Provider `json:"provider,omitempty"`
}

// CommonStatus holds the status fields every Meshplane kind has.
type CommonStatus struct {
	// observedGeneration is the metadata.generation the status was last
	// computed from. It is set only when a reconcile ended in success or in
	// a terminal (Stalled) error.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions follow the kstatus vocabulary: Ready summarises, Reconciling
	// and Stalled are abnormal-true; kinds add their own.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// undecodable notes the stored fields that could not be decoded (see
	// decode.go); never serialized.
	undecodable string `json:"-"`
}

// GetConditions returns the conditions of the status.
func (in *CommonStatus) GetConditions() []metav1.Condition { return in.Conditions }

// SetConditions replaces the conditions of the status.
func (in *CommonStatus) SetConditions(c []metav1.Condition) { in.Conditions = c }

// KeyType is the algorithm and size of a generated private key.
// +kubebuilder:validation:Enum=ECDSAP256;ECDSAP384;RSA2048;RSA3072;RSA4096
type KeyType string

const (
	// KeyTypeECDSAP256 is ECDSA on NIST P-256, the default.
	KeyTypeECDSAP256 KeyType = "ECDSAP256"
	// KeyTypeECDSAP384 is ECDSA on NIST P-384.
	KeyTypeECDSAP384 KeyType = "ECDSAP384"
	// KeyTypeRSA2048 is RSA with a 2048-bit modulus.
	KeyTypeRSA2048 KeyType = "RSA2048"
	// KeyTypeRSA3072 is RSA with a 3072-bit modulus.
	KeyTypeRSA3072 KeyType = "RSA3072"
	// KeyTypeRSA4096 is RSA with a 4096-bit modulus.
	KeyTypeRSA4096 KeyType = "RSA4096"
)

// HTTPMethod is an HTTP request method.
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;DELETE;CONNECT;OPTIONS;TRACE;PATCH
type HTTPMethod string

// HeaderMatchType is how a header value is compared.
// +kubebuilder:validation:Enum=Exact;Prefix;RegularExpression
type HeaderMatchType string

const (
	// HeaderMatchExact matches the whole value.
	HeaderMatchExact HeaderMatchType = "Exact"
	// HeaderMatchPrefix matches values starting with the given string.
	HeaderMatchPrefix HeaderMatchType = "Prefix"
	// HeaderMatchRegularExpression matches an RE2 regular expression.
	HeaderMatchRegularExpression HeaderMatchType = "RegularExpression"
)

// PathMatchType is how a request path is compared.
// +kubebuilder:validation:Enum=Exact;PathPrefix
type PathMatchType string

const (
	// PathMatchExact matches the whole path.
	PathMatchExact PathMatchType = "Exact"
	// PathMatchPathPrefix matches the path by '/'-separated prefix.
	PathMatchPathPrefix PathMatchType = "PathPrefix"
)

// HTTPHeaderMatch matches one request header.
type HTTPHeaderMatch struct {
	// name of the header, case-insensitive.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`

	// type of comparison; Exact by default.
	// +optional
	// +kubebuilder:default=Exact
	Type HeaderMatchType `json:"type,omitempty"`

	// value to compare with.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// HTTPPathMatch matches the request path.
type HTTPPathMatch struct {
	// type of comparison; PathPrefix by default.
	// +optional
	// +kubebuilder:default=PathPrefix
	Type PathMatchType `json:"type,omitempty"`

	// value is an absolute path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must be absolute (start with '/')"
	Value string `json:"value"`
}

// HTTPMatch is one set of conditions a request must all meet. Several
// HTTPMatches on a rule are ORed.
// +kubebuilder:validation:XValidation:rule="has(self.headers) || has(self.path) || has(self.method)",message="a match needs at least one of headers, path or method"
type HTTPMatch struct {
	// headers that must all match.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Headers []HTTPHeaderMatch `json:"headers,omitempty"`

	// path the request must match.
	// +optional
	Path *HTTPPathMatch `json:"path,omitempty"`

	// method the request must use.
	// +optional
	Method HTTPMethod `json:"method,omitempty"`
}

// RetryOn is a condition on which a request is retried.
// +kubebuilder:validation:Enum=5xx;GatewayError;Reset;ConnectFailure;Retriable4xx;RefusedStream;Unavailable;Cancelled;DeadlineExceeded
type RetryOn string

// RetryPolicy retries failed requests.
type RetryPolicy struct {
	// attempts is the number of retries after the first try.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`

	// perTryTimeout bounds each attempt.
	// Bounds 1ms..1h: meshes' proxies count in milliseconds.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'perTryTimeout must be between 1ms and 1h; got ' + self : 'perTryTimeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`

	// retryOn lists the conditions that trigger a retry; the mesh's default
	// when empty. Meshes that cannot select conditions report
	// UnsupportedFeature when this is set. (Named retryOn, not on, because
	// YAML 1.1 parsers read a bare "on" key as the boolean true.)
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=9
	RetryOn []RetryOn `json:"retryOn,omitempty"`
}
