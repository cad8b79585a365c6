package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConnectionPool bounds the connections and requests a client's proxy
// opens to the target Service; requests beyond them fail fast (circuit
// breaking).
// +kubebuilder:validation:MinProperties=1
type ConnectionPool struct {
	// maxConnections to the Service, per client proxy.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// maxPendingRequests waiting for a connection.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`

	// maxRequests in flight at once (concurrent requests).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxRequests *int32 `json:"maxRequests,omitempty"`

	// maxRequestsPerConnection before a connection is closed; 1 disables
	// keep-alive.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxRequestsPerConnection *int32 `json:"maxRequestsPerConnection,omitempty"`

	// connectTimeout bounds opening a TCP connection. Bounds 1ms..1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'connectTimeout must be between 1ms and 1h; got ' + self : 'connectTimeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	ConnectTimeout *metav1.Duration `json:"connectTimeout,omitempty"`

	// idleTimeout closes a connection without requests for this long.
	// Bounds 1s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'idleTimeout must be between 1s and 24h; got ' + self : 'idleTimeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
}

// SuccessRateEjection ejects endpoints whose success rate is more than
// stdevFactor/1000 standard deviations below the mean of all endpoints.
type SuccessRateEjection struct {
	// minimumHosts that must have enough requests for the mode to run.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MinimumHosts int32 `json:"minimumHosts,omitempty"`

	// requestVolume an endpoint needs in one interval to be judged.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	RequestVolume int32 `json:"requestVolume,omitempty"`

	// stdevFactor in thousandths: 1900 ejects endpoints 1.9 standard
	// deviations below the mean.
	// +optional
	// +kubebuilder:default=1900
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=10000
	StdevFactor int32 `json:"stdevFactor,omitempty"`
}

// OutlierDetection ejects failing endpoints from the load-balancing pool
// for a while (passive health checking).
// +kubebuilder:validation:XValidation:rule="has(self.consecutive5xxErrors) || has(self.consecutiveGatewayErrors) || has(self.successRate)",message="outlierDetection needs consecutive5xxErrors, consecutiveGatewayErrors or successRate"
type OutlierDetection struct {
	// consecutive5xxErrors (5xx responses, or connection failures) that
	// eject an endpoint.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Consecutive5xxErrors *int32 `json:"consecutive5xxErrors,omitempty"`

	// consecutiveGatewayErrors (502, 503, 504, connection failures) that
	// eject an endpoint.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`

	// interval between ejection sweeps. Bounds 1ms..1h; the mesh's default
	// (10s) when unset.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'interval must be between 1ms and 1h; got ' + self : 'interval "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Interval *metav1.Duration `json:"interval,omitempty"`

	// baseEjectionTime an endpoint stays ejected, multiplied by the number
	// of times it was ejected. Bounds 1ms..1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'baseEjectionTime must be between 1ms and 1h; got ' + self : 'baseEjectionTime "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`

	// maxEjectionPercent of the endpoints that may be ejected at once.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`

	// successRate ejects endpoints by their success rate compared with the
	// others (statistical mode).
	// +optional
	SuccessRate *SuccessRateEjection `json:"successRate,omitempty"`
}

// LoadBalancerAlgorithm picks an endpoint for each request.
// +kubebuilder:validation:Enum=RoundRobin;LeastRequest;Random;ConsistentHash
type LoadBalancerAlgorithm string

const (
	// LoadBalancerRoundRobin takes the endpoints in turn.
	LoadBalancerRoundRobin LoadBalancerAlgorithm = "RoundRobin"
	// LoadBalancerLeastRequest prefers endpoints with fewer requests in
	// flight.
	LoadBalancerLeastRequest LoadBalancerAlgorithm = "LeastRequest"
	// LoadBalancerRandom picks an endpoint at random.
	LoadBalancerRandom LoadBalancerAlgorithm = "Random"
	// LoadBalancerConsistentHash sends requests with the same key to the
	// same endpoint (session affinity).
	LoadBalancerConsistentHash LoadBalancerAlgorithm = "ConsistentHash"
)

// HashCookie is a cookie to hash on.
type HashCookie struct {
	// name of the cookie.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`

	// ttl of the cookie the proxy sets when the request has none; unset:
	// the cookie is not generated. Bounds 1s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'ttl must be between 1s and 24h; got ' + self : 'ttl "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	TTL *metav1.Duration `json:"ttl,omitempty"`
}

// ConsistentHash is the key of consistent hashing: exactly one of header,
// cookie or sourceIP.
// +kubebuilder:validation:XValidation:rule="[has(self.header), has(self.cookie), has(self.sourceIP) && self.sourceIP].filter(x, x).size() == 1",message="consistentHash needs exactly one of header, cookie or sourceIP: true"
type ConsistentHash struct {
	// header whose value is hashed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Header string `json:"header,omitempty"`

	// cookie whose value is hashed.
	// +optional
	Cookie *HashCookie `json:"cookie,omitempty"`

	// sourceIP hashes the client's address.
	// +optional
	SourceIP bool `json:"sourceIP,omitempty"`
}

// LoadBalancer chooses how requests are spread over the endpoints.
// +kubebuilder:validation:XValidation:rule="(self.algorithm == 'ConsistentHash') == has(self.consistentHash)",message="consistentHash is set exactly when algorithm is ConsistentHash"
// +kubebuilder:validation:XValidation:rule="!has(self.warmup) || self.algorithm in ['RoundRobin', 'LeastRequest']",message="warmup needs algorithm RoundRobin or LeastRequest"
type LoadBalancer struct {
	// algorithm picks an endpoint for each request.
	// +required
	Algorithm LoadBalancerAlgorithm `json:"algorithm"`

	// consistentHash is the hash key of algorithm ConsistentHash.
	// +optional
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`

	// warmup ramps a new endpoint's share of the traffic up over this
	// time (slow start). Bounds 1s..1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'warmup must be between 1s and 1h; got ' + self : 'warmup "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Warmup *metav1.Duration `json:"warmup,omitempty"`
}

// RetryBudget limits retries to a share of the requests in flight, so
// retries cannot multiply load during an outage.
type RetryBudget struct {
	// percent of the active requests that may be retries.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`

	// minRetryConcurrency is the number of concurrent retries always
	// allowed, whatever the percentage.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MinRetryConcurrency *int32 `json:"minRetryConcurrency,omitempty"`
}

// ResilienceRetries retries failed requests, optionally within a budget.
type ResilienceRetries struct {
	RetryPolicy `json:",inline"`

	// budget bounds the retries across all clients' requests in flight.
	// +optional
	Budget *RetryBudget `json:"budget,omitempty"`
}

// Timeouts bound requests and idle streams.
// +kubebuilder:validation:MinProperties=1
type Timeouts struct {
	// request bounds a whole request, retries included. Bounds 1ms..1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'request must be between 1ms and 1h; got ' + self : 'request "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Request *metav1.Duration `json:"request,omitempty"`

	// idle closes a request stream without activity for this long.
	// Bounds 1s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'idle must be between 1s and 24h; got ' + self : 'idle "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Idle *metav1.Duration `json:"idle,omitempty"`
}

// FaultDelay delays a share of the requests.
type FaultDelay struct {
	// fixedDelay added before the request is forwarded. Bounds 1ms..1h.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'fixedDelay must be between 1ms and 1h; got ' + self : 'fixedDelay "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	FixedDelay metav1.Duration `json:"fixedDelay"`

	// percent of the requests delayed.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
}

// FaultAbort fails a share of the requests with an HTTP status.
type FaultAbort struct {
	// httpStatus returned instead of forwarding the request.
	// +required
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	HTTPStatus int32 `json:"httpStatus"`

	// percent of the requests aborted.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
}

// FaultInjection injects delays and errors, for chaos testing. A
// BreakGlass turns it off.
// +kubebuilder:validation:XValidation:rule="has(self.delay) || has(self.abort)",message="faultInjection needs delay or abort"
type FaultInjection struct {
	// delay a share of the requests.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`

	// abort a share of the requests.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`

	// headers limit the faults to requests carrying all of them; every
	// request when empty.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Headers []HTTPHeaderMatch `json:"headers,omitempty"`
}

// LocalRateLimit is a token bucket in each of the target's proxies
// (inbound): requests beyond it get 429.
// +kubebuilder:validation:XValidation:rule="!has(self.burst) || self.burst >= self.requests",message="burst must be at least requests"
type LocalRateLimit struct {
	// requests allowed per interval.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Requests int32 `json:"requests"`

	// interval the requests are counted over. Bounds 50ms..1h (Envoy's
	// token bucket refills at most every 50ms).
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('50ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'interval must be between 50ms and 1h; got ' + self : 'interval "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Interval metav1.Duration `json:"interval"`

	// burst is the bucket's size: requests allowed at once after a quiet
	// period; requests when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	Burst *int32 `json:"burst,omitempty"`

	// pathPrefix limits only the requests whose path starts with it (a
	// per-route limit); every request when unset. Other requests are not
	// limited.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && !self.contains('?') && !self.contains('#')",message="pathPrefix must start with / and hold no query (?) or fragment (#), e.g. /api"
	PathPrefix string `json:"pathPrefix,omitempty"`
}

// RateLimit limits the requests the target accepts.
type RateLimit struct {
	// local limits each of the target's proxies on its own.
	// +required
	Local LocalRateLimit `json:"local"`

	// global asks the user's rate-limit service (Envoy's rate limit
	// service protocol, e.g. envoyproxy/ratelimit) about each request, so
	// one limit holds across every replica. The local limit still applies
	// first, sparing the service.
	// +optional
	Global *GlobalRateLimit `json:"global,omitempty"`
}

// GlobalRateLimit is a global rate limit decided by an external
// rate-limit service the user runs.
type GlobalRateLimit struct {
	// service is the rate-limit service's Service (gRPC).
	// +required
	Service RateLimitService `json:"service"`

	// domain the descriptors are sent under; the service's configuration
	// names it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_.-]*$`
	Domain string `json:"domain"`

	// descriptors are the entries of the descriptor each request sends,
	// in order (the service's configuration nests them in this order).
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Descriptors []RateLimitDescriptor `json:"descriptors"`

	// failClosed rejects requests (500) while the service cannot be
	// asked; by default they are let through.
	// +optional
	FailClosed bool `json:"failClosed,omitempty"`

	// timeout of one call to the service; 20ms when unset. Bounds
	// 1ms..10s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('10s')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'timeout must be between 1ms and 10s; got ' + self : 'timeout "' + self + '" is not a duration: write a number and a unit, such as 20ms or 1s (units h, m, s, ms, us, ns; no days, years or sign)'`
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// RateLimitService is the Service of a rate-limit service.
type RateLimitService struct {
	// name of the Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// namespace of the Service; the policy's when unset.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`

	// port the service answers gRPC on (envoyproxy/ratelimit: 8081).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// RateLimitDescriptor is one entry of a request's descriptor: a key and a
// value taken from exactly one of a request header, the path, or a
// constant.
// +kubebuilder:validation:XValidation:rule="[has(self.header), has(self.path) && self.path, has(self.value)].filter(x, x).size() == 1",message="a descriptor takes its value from exactly one of header, path (true) or value"
type RateLimitDescriptor struct {
	// key of the entry, as the service's configuration names it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	Key string `json:"key"`

	// header whose value is the entry's value (a request without it
	// sends no descriptor, so it is not limited).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Header string `json:"header,omitempty"`

	// path makes the request's path the entry's value.
	// +optional
	Path bool `json:"path,omitempty"`

	// value is a constant value.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value,omitempty"`
}

// ResiliencePolicySpec says how calls to a Service behave.
// +kubebuilder:validation:XValidation:rule="has(self.connectionPool) || has(self.outlierDetection) || has(self.loadBalancer) || has(self.retries) || has(self.timeouts) || has(self.faultInjection) || has(self.rateLimit)",message="a ResiliencePolicy needs at least one of connectionPool, outlierDetection, loadBalancer, retries, timeouts, faultInjection or rateLimit"
// +kubebuilder:validation:XValidation:rule="!has(self.retries) || !has(self.retries.perTryTimeout) || !has(self.timeouts) || !has(self.timeouts.request) || duration(self.retries.perTryTimeout) <= duration(self.timeouts.request)",message="retries.perTryTimeout must not exceed timeouts.request"
type ResiliencePolicySpec struct {
	MeshSelection `json:",inline"`

	// targetRef is the Service whose callers the policy governs, and
	// optionally one of its ports (every port when unset).
	// +required
	TargetRef ServiceReference `json:"targetRef"`

	// connectionPool bounds connections and requests (circuit breaking).
	// +optional
	ConnectionPool *ConnectionPool `json:"connectionPool,omitempty"`

	// outlierDetection ejects failing endpoints. A BreakGlass turns it off.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// loadBalancer chooses the load-balancing algorithm.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// retries failed requests, within an optional budget.
	// +optional
	Retries *ResilienceRetries `json:"retries,omitempty"`

	// timeouts bound requests and idle streams.
	// +optional
	Timeouts *Timeouts `json:"timeouts,omitempty"`

	// faultInjection injects delays and errors (chaos testing).
	// +optional
	FaultInjection *FaultInjection `json:"faultInjection,omitempty"`

	// rateLimit limits the requests the target accepts. A BreakGlass lifts
	// it.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// FieldSupportState is what a mesh does with one field of a
// ResiliencePolicy.
// +kubebuilder:validation:Enum=Enforced;Refused
type FieldSupportState string

const (
	// FieldEnforced: the mesh enforces the field.
	FieldEnforced FieldSupportState = "Enforced"
	// FieldRefused: the mesh cannot enforce the field (as installed, in
	// this namespace); a policy using it on that mesh is refused whole.
	FieldRefused FieldSupportState = "Refused"
)

// FieldSupport is one mesh's answer for one field the spec sets.
type FieldSupport struct {
	// field of the spec, e.g. outlierDetection.successRate.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Field string `json:"field"`

	// provider is the mesh answering.
	// +required
	Provider Provider `json:"provider"`

	// state is Enforced or Refused.
	// +required
	State FieldSupportState `json:"state"`

	// detail says what the field becomes (Enforced) or why it is refused
	// and what to change (Refused).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Detail string `json:"detail,omitempty"`
}

// ResiliencePolicyStatus is the observed state of a ResiliencePolicy.
type ResiliencePolicyStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the policy was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// support reports, per field the spec sets and per mesh, whether the
	// mesh enforces it (and as what) or refuses it (and why). The selected
	// provider's answers decide; the others tell what a move would keep.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	Support []FieldSupport `json:"support,omitempty"`

	// composedWith names the TrafficSplit or Canary whose route carries
	// the policy's route-level fields (retries, timeouts, faults), when one
	// routes the target; empty when the policy writes its own route.
	// +optional
	// +kubebuilder:validation:MaxLength=300
	ComposedWith string `json:"composedWith,omitempty"`

	// inventory lists the objects written for this policy, so outputs no
	// longer desired are pruned exactly.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Inventory []ObjectReference `json:"inventory,omitempty"`

	// sharedFields are the fields the policy set on objects it did not
	// create (annotations of the target Service), with their previous
	// values, restored when the policy lets go of them.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	SharedFields []SharedField `json:"sharedFields,omitempty"`
}

// ResiliencePolicy says how calls to a Service behave: connection pool,
// outlier detection, load balancing, retries with a budget, timeouts,
// fault injection and rate limiting, on any mesh, with a per-field report
// of what each mesh enforces.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rp,categories=meshplane
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ResiliencePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired behaviour.
	// +required
	Spec ResiliencePolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status ResiliencePolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ResiliencePolicyList is a list of ResiliencePolicies.
type ResiliencePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ResiliencePolicy `json:"items"`
}

func init() {
	register(&ResiliencePolicy{}, &ResiliencePolicyList{})
}
