package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CanaryStrategy is how a new revision is exposed to traffic.
// +kubebuilder:validation:Enum=Canary;BlueGreen;ABTesting;Mirroring
type CanaryStrategy string

const (
	// StrategyCanary shifts traffic in steps (stepWeight or stepWeights) up
	// to maxWeight, analysing at each step.
	StrategyCanary CanaryStrategy = "Canary"
	// StrategyBlueGreen runs iterations of analysis on the canary with 0%
	// traffic, then switches all traffic at once.
	StrategyBlueGreen CanaryStrategy = "BlueGreen"
	// StrategyABTesting routes the requests that match analysis.match to the
	// canary for a number of iterations.
	StrategyABTesting CanaryStrategy = "ABTesting"
	// StrategyMirroring mirrors traffic to the canary for a number of
	// iterations, then shifts traffic in steps.
	StrategyMirroring CanaryStrategy = "Mirroring"
)

// CanaryPhase is the step a Canary is in.
// +kubebuilder:validation:Enum=Initializing;Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Finalising;Succeeded;Failed;Terminating
type CanaryPhase string

const (
	// CanaryPhaseInitializing: the primary and Services are being created.
	CanaryPhaseInitializing CanaryPhase = "Initializing"
	// CanaryPhaseInitialized: the primary serves all traffic; waiting for a
	// new revision.
	CanaryPhaseInitialized CanaryPhase = "Initialized"
	// CanaryPhaseWaiting: a gate webhook holds the canary.
	CanaryPhaseWaiting CanaryPhase = "Waiting"
	// CanaryPhaseProgressing: analysis and traffic shifting run.
	CanaryPhaseProgressing CanaryPhase = "Progressing"
	// CanaryPhaseWaitingPromotion: the confirm-promotion gate holds.
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	// CanaryPhasePromoting: the primary is being updated to the canary's
	// template.
	CanaryPhasePromoting CanaryPhase = "Promoting"
	// CanaryPhaseFinalising: traffic returns to the primary and the canary
	// scales to zero.
	CanaryPhaseFinalising CanaryPhase = "Finalising"
	// CanaryPhaseSucceeded: the revision was promoted.
	CanaryPhaseSucceeded CanaryPhase = "Succeeded"
	// CanaryPhaseFailed: the revision was rolled back.
	CanaryPhaseFailed CanaryPhase = "Failed"
	// CanaryPhaseTerminating: the Canary is being deleted.
	CanaryPhaseTerminating CanaryPhase = "Terminating"
)

// Annotations on a Canary for manual control.
const (
	// CanaryActionAnnotation set to "abort" rolls back now, to "promote"
	// promotes now; Meshplane removes it once acted on.
	CanaryActionAnnotation = "meshplane.io/canary-action"
)

// CanaryTargetReference names the Deployment a Canary delivers.
type CanaryTargetReference struct {
	// apiVersion of the target; apps/v1.
	// +optional
	// +kubebuilder:default="apps/v1"
	// +kubebuilder:validation:Enum="apps/v1"
	APIVersion string `json:"apiVersion,omitempty"`

	// kind of the target; Deployment.
	// +optional
	// +kubebuilder:default=Deployment
	// +kubebuilder:validation:Enum=Deployment
	Kind string `json:"kind,omitempty"`

	// name of the Deployment in the Canary's namespace. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=245
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="targetRef.name is immutable; create a new Canary for another Deployment"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",messageExpression=`'name "' + self + '" is not a valid Deployment name: use lower-case letters, digits, \'-\' and \'.\', starting and ending with a letter or digit (a DNS-1123 subdomain); give the name alone, without a namespace/ prefix'`
	Name string `json:"name"`
}

// CanaryService describes the Services Meshplane creates for the target:
// <name> (routed), <name>-primary and <name>-canary.
type CanaryService struct {
	// name of the routed Service; the target's name when unset. Meshplane
	// also creates <name>-primary and <name>-canary, hence at most 55
	// characters. A Service of this name that Meshplane did not create is
	// never taken over (condition Conflict).
	// +optional
	// +kubebuilder:validation:MaxLength=55
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// port the Services expose.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// portName of the Service port; "http" by default.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	PortName string `json:"portName,omitempty"`

	// targetPort on the pods; the port when unset.
	// +optional
	TargetPort *intstr.IntOrString `json:"targetPort,omitempty"`

	// timeout for a request through the routed Service.
	// Bounds 1ms..1h: meshes' proxies count in milliseconds.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'timeout must be between 1ms and 1h; got ' + self : 'timeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// retries through the routed Service.
	// +optional
	Retries *RetryPolicy `json:"retries,omitempty"`
}

// ThresholdRange bounds a metric's value. Values are decimal numbers.
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange needs min or max"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || double(self.min) <= double(self.max)",message="thresholdRange.min must not exceed max"
type ThresholdRange struct {
	// min is the lowest passing value.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	Min *string `json:"min,omitempty"`

	// max is the highest passing value.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	Max *string `json:"max,omitempty"`
}

// CanaryMetric is one check run at every analysis interval.
// +kubebuilder:validation:XValidation:rule="self.name in ['request-success-rate', 'request-duration'] || has(self.query)",message="a metric other than the built-in request-success-rate and request-duration needs a query"
type CanaryMetric struct {
	// name of the check. request-success-rate (percent) and
	// request-duration (milliseconds, p99) are built in, with queries for
	// each mesh's own metric names.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// query is a PromQL query returning one scalar or one-sample vector.
	// The placeholders {{ namespace }}, {{ target }} and {{ interval }} are
	// filled in.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query,omitempty"`

	// thresholdRange the value must stay within.
	// +required
	ThresholdRange ThresholdRange `json:"thresholdRange"`

	// interval is the query's range window; the analysis interval when
	// unset.
	// Bounds 1s..24h (a PromQL range window).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'interval must be between 1s and 24h; got ' + self : 'interval "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// WebhookType is when a webhook is called.
// +kubebuilder:validation:Enum=pre-rollout;rollout;confirm-rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
type WebhookType string

// The webhook types, in the order of a delivery.
const (
	WebhookPreRollout             WebhookType = "pre-rollout"
	WebhookRollout                WebhookType = "rollout"
	WebhookConfirmRollout         WebhookType = "confirm-rollout"
	WebhookConfirmTrafficIncrease WebhookType = "confirm-traffic-increase"
	WebhookConfirmPromotion       WebhookType = "confirm-promotion"
	WebhookPostRollout            WebhookType = "post-rollout"
	WebhookRollback               WebhookType = "rollback"
	WebhookEvent                  WebhookType = "event"
)

// CanaryWebhook is an HTTP call made at one point of the analysis. Gate
// types (confirm-*) hold the canary until the call returns 2xx; check types
// (pre-rollout, rollout) count a non-2xx answer as a failed check.
type CanaryWebhook struct {
	// name of the webhook.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// type says when the webhook is called.
	// +required
	Type WebhookType `json:"type"`

	// url to POST to.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	URL string `json:"url"`

	// timeout of one call; 10s by default.
	// Bounds 1ms..5m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('5m')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'timeout must be between 1ms and 5m; got ' + self : 'timeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// metadata is sent with the call.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Metadata map[string]string `json:"metadata,omitempty"`
}

// MetricsServer is a Prometheus-compatible HTTP API.
type MetricsServer struct {
	// address of the API, e.g. http://prometheus.monitoring:9090.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	Address string `json:"address"`

	// secretRef names a Secret in the Canary's namespace with keys username
	// and password, or token, for the API.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// insecureSkipVerify skips TLS verification of the API.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// CanaryAnalysis is the schedule, traffic plan, checks and gates of a
// Canary.
// +kubebuilder:validation:XValidation:rule="!(has(self.stepWeight) && has(self.stepWeights))",message="stepWeight and stepWeights are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || self.stepWeights.isSorted()",message="stepWeights must be in ascending order"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || self.stepWeights.all(w, self.stepWeights.exists_one(x, x == w))",message="stepWeights must not repeat a weight"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || !has(self.maxWeight) || self.stepWeights.all(w, w <= self.maxWeight)",message="stepWeights must not exceed maxWeight"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeight) || !has(self.maxWeight) || self.stepWeight <= self.maxWeight",message="stepWeight must not exceed maxWeight"
type CanaryAnalysis struct {
	// interval between analysis steps; 1m by default.
	// Bounds 1s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'interval must be between 1s and 24h; got ' + self : 'interval "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Interval *metav1.Duration `json:"interval,omitempty"`

	// threshold is the number of failed checks that triggers a rollback.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Threshold int32 `json:"threshold,omitempty"`

	// maxWeight is the highest canary weight before promotion (Canary and
	// Mirroring strategies).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxWeight *int32 `json:"maxWeight,omitempty"`

	// stepWeight is the weight added at each step.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	StepWeight *int32 `json:"stepWeight,omitempty"`

	// stepWeights is an explicit ascending list of weights.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	StepWeights []int32 `json:"stepWeights,omitempty"`

	// iterations of analysis for BlueGreen, ABTesting and Mirroring.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Iterations *int32 `json:"iterations,omitempty"`

	// match selects the cohort routed to the canary (ABTesting).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Match []HTTPMatch `json:"match,omitempty"`

	// mirrorPercent of requests mirrored to the canary (Mirroring); 100 by
	// default.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MirrorPercent *int32 `json:"mirrorPercent,omitempty"`

	// metrics are checked at every interval.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Metrics []CanaryMetric `json:"metrics,omitempty"`

	// webhooks are called at their points of the analysis.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`

	// metricsServer is the Prometheus-compatible API queried; the
	// operator's --metrics-server default when unset.
	// +optional
	MetricsServer *MetricsServer `json:"metricsServer,omitempty"`
}

// CanarySpec is the progressive delivery of a Deployment.
// +kubebuilder:validation:XValidation:rule="self.strategy != 'Canary' || has(self.analysis.stepWeight) || has(self.analysis.stepWeights)",message="strategy Canary needs analysis.stepWeight or analysis.stepWeights"
// +kubebuilder:validation:XValidation:rule="self.strategy != 'BlueGreen' || has(self.analysis.iterations)",message="strategy BlueGreen needs analysis.iterations"
// +kubebuilder:validation:XValidation:rule="self.strategy != 'ABTesting' || (has(self.analysis.iterations) && has(self.analysis.match))",message="strategy ABTesting needs analysis.iterations and analysis.match"
// +kubebuilder:validation:XValidation:rule="self.strategy == 'ABTesting' || !has(self.analysis.match)",message="analysis.match is only used by strategy ABTesting"
// +kubebuilder:validation:XValidation:rule="self.strategy == 'Mirroring' || !has(self.analysis.mirrorPercent)",message="analysis.mirrorPercent is only used by strategy Mirroring"
// +kubebuilder:validation:XValidation:rule="self.strategy != 'Mirroring' || (has(self.analysis.iterations) && (has(self.analysis.stepWeight) || has(self.analysis.stepWeights)))",message="strategy Mirroring needs analysis.iterations (mirrored) and analysis.stepWeight or stepWeights (shifted)"
// +kubebuilder:validation:XValidation:rule="has(self.service.name) || (size(self.targetRef.name) <= 55 && self.targetRef.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$'))",message="targetRef.name is not usable as a Service name with -primary/-canary suffixes (DNS label of at most 55 characters); set service.name"
type CanarySpec struct {
	MeshSelection `json:",inline"`

	// targetRef is the Deployment delivered.
	// +required
	TargetRef CanaryTargetReference `json:"targetRef"`

	// service describes the Services Meshplane creates.
	// +required
	Service CanaryService `json:"service"`

	// strategy is how a new revision is exposed.
	// +optional
	// +kubebuilder:default=Canary
	Strategy CanaryStrategy `json:"strategy,omitempty"`

	// analysis is the schedule, traffic plan, checks and gates.
	// +required
	Analysis CanaryAnalysis `json:"analysis"`

	// progressDeadline is how long the canary may take to make progress
	// (a Deployment to become Available) before it is rolled back; 10m by
	// default.
	// Bounds 1s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'progressDeadline must be between 1s and 24h; got ' + self : 'progressDeadline "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`

	// suspend stops the analysis where it is; traffic stays as it is.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// skipAnalysis promotes new revisions without checks.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// revertOnDeletion, when true, also removes the primary on deletion and
	// scales the target back up; by default the primary is kept and routing
	// is restored to the original Service so the workload keeps serving.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`
}

// CanaryStatus is the observed state of a Canary.
type CanaryStatus struct {
	CommonStatus `json:",inline"`

	// phase of the delivery.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// provider is the mesh traffic is routed through.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// canaryWeight is the percentage routed to the canary.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	CanaryWeight int32 `json:"canaryWeight"`

	// failedChecks in the current analysis.
	// +optional
	FailedChecks int32 `json:"failedChecks"`

	// iterations done in the current analysis.
	// +optional
	Iterations int32 `json:"iterations"`

	// lastAppliedSpec is the hash of the target's pod template last
	// promoted; a different hash starts a new analysis.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// lastPromotedSpec is the hash of the pod template the primary runs.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// lastTransitionTime of the phase.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// lastAnalysisTime is when the last analysis interval (checks or gate
	// call) ran; the next one runs an interval later. Microsecond
	// precision, so intervals of a second stay a second apart. While
	// intervals change nothing else (a Canary held by a gate) it is
	// written at most every 30 s: the operator keeps the newer time.
	// +optional
	LastAnalysisTime *metav1.MicroTime `json:"lastAnalysisTime,omitempty"`

	// message explains the phase (the failing check, the holding gate).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// inventory lists the objects written for this Canary.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Inventory []ObjectReference `json:"inventory,omitempty"`
}

// Canary delivers new revisions of a Deployment progressively, with metric
// analysis, webhooks and automatic rollback, on any mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cn,categories=meshplane
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.strategy`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired delivery.
	// +required
	Spec CanarySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status CanaryStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CanaryList is a list of Canaries.
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

func init() {
	register(&Canary{}, &CanaryList{})
}
