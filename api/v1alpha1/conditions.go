package v1alpha1

// Condition types shared by every kind (kstatus vocabulary).
const (
	// ReadyCondition summarises the object: True when the desired state is
	// in place and healthy.
	ReadyCondition = "Ready"
	// ReconcilingCondition is True while Meshplane is working towards the
	// desired state (abnormal-true).
	ReconcilingCondition = "Reconciling"
	// StalledCondition is True when Meshplane cannot make progress until the
	// spec or the environment changes (abnormal-true).
	StalledCondition = "Stalled"
)

// Kind-specific condition types.
const (
	// InstalledCondition (MeshInstall, MeshRevision) is True when the Helm
	// releases of the control plane are deployed.
	InstalledCondition = "Installed"
	// ComponentsReadyCondition (MeshInstall, MeshRevision) is True when every
	// control-plane Deployment and DaemonSet is Available.
	ComponentsReadyCondition = "ComponentsReady"
	// CRDsEstablishedCondition (MeshInstall) is True when the mesh's CRDs are
	// Established.
	CRDsEstablishedCondition = "CRDsEstablished"
	// UpgradingCondition (MeshInstall) is True while an upgrade runs.
	UpgradingCondition = "Upgrading"
	// InUseCondition (MeshRevision) is True while a namespace label, a
	// revision tag or a running pod still uses the revision.
	InUseCondition = "InUse"
	// ResolvedRefsCondition (TrafficSplit, ZeroTrustPolicy, Canary) is True
	// when every referenced Service, Deployment and Secret exists and fits.
	ResolvedRefsCondition = "ResolvedRefs"
	// PromotedCondition (Canary) is True when the last revision was promoted.
	PromotedCondition = "Promoted"
	// RootReadyCondition (MeshFederation) is True when the root CA is valid.
	RootReadyCondition = "RootReady"
	// DistributedCondition (MeshFederation) is True when every member
	// cluster holds its intermediate and the current bundle.
	DistributedCondition = "Distributed"
	// RotatingCondition (MeshFederation) is True while a root rotation runs.
	RotatingCondition = "Rotating"
	// ClusterReachableCondition (MeshFederation, per cluster) is True when the
	// member cluster answers.
	ClusterReachableCondition = "ClusterReachable"

	// ServicesConnectedCondition (MeshFederation, and per cluster) is True
	// when every member (the member) holds what service federation writes
	// and reads every peer its mesh can federate services with.
	ServicesConnectedCondition = "ServicesConnected"
	// CrossClusterPolicyCondition (MeshFederation, per Cilium ClusterMesh
	// member) is True when the member's network policies without a cluster
	// selector also select endpoints of the other clusters, and False
	// (reason LocalClusterPolicyDefault) when Cilium's
	// policy-default-local-cluster narrows them to the member's own
	// cluster.
	CrossClusterPolicyCondition = "CrossClusterPolicy"
	// LocalClusterPolicyDefaultReason: policy-default-local-cluster is true.
	LocalClusterPolicyDefaultReason = "LocalClusterPolicyDefault"
	// EngagedCondition (BreakGlass) is True when every action took effect.
	EngagedCondition = "Engaged"
	// ProxiesCurrentCondition (ZeroTrustPolicy) is True when every running
	// meshed pod of the namespace runs with the policy's settings that a
	// mesh's proxies read only when they start (Linkerd's default inbound
	// policy), False with reason StalePolicy naming the pods that do not.
	ProxiesCurrentCondition = "ProxiesCurrent"
	// BreakGlassActiveCondition is set by the MeshInstall, TrafficSplit,
	// ZeroTrustPolicy and Canary controllers on objects a BreakGlass covers.
	BreakGlassActiveCondition = "BreakGlassActive"
	// DriftDetectedCondition (TrafficSplit, ZeroTrustPolicy, Canary) is
	// True while another writer keeps rewriting fields of an output that
	// Meshplane owns (reason DriftFight): repairs back off exponentially
	// and the message names the other field manager and the fields.
	DriftDetectedCondition = "DriftDetected"
)

// Condition reasons. Every condition Meshplane sets uses one of these.
const (
	// StalePolicyReason: running pods' proxies started with a previous
	// policy setting they read only at start; restart them to apply it.
	StalePolicyReason = "StalePolicy"
	// SucceededReason: the desired state is in place.
	SucceededReason = "Succeeded"
	// ProgressingReason: work is under way.
	ProgressingReason = "Progressing"
	// ProviderNotResolvedReason: no mesh serves the namespace, or two
	// conflict; set spec.provider or label the namespace.
	ProviderNotResolvedReason = "ProviderNotResolved"
	// ProviderUnknownReason: the provider is not registered in this build of
	// Meshplane (the registry fails closed).
	ProviderUnknownReason = "ProviderUnknown"
	// UnsupportedFeatureReason: the spec uses a feature the selected mesh
	// cannot express; the message names the feature and the mesh, and
	// nothing was applied.
	UnsupportedFeatureReason = "UnsupportedFeature"
	// InvalidSpecReason: a rule CEL cannot express was violated.
	InvalidSpecReason = "InvalidSpec"
	// ReferenceNotFoundReason: a referenced object does not exist.
	ReferenceNotFoundReason = "ReferenceNotFound"
	// ConflictReason: an object with an output's name exists and was not
	// created by Meshplane; it is never taken over.
	ConflictReason = "Conflict"
	// ApplyFailedReason: a write was refused by the API server.
	ApplyFailedReason = "ApplyFailed"
	// OutputKindMissingReason: an output kind the object needs is not
	// served (its CRD is not installed); the object reconciles when it
	// appears.
	OutputKindMissingReason = "OutputKindMissing"
	// ChartUnavailableReason: the chart or its repository cannot be fetched.
	ChartUnavailableReason = "ChartUnavailable"
	// RenderFailedReason: the chart did not render with the given values.
	RenderFailedReason = "RenderFailed"
	// InstallFailedReason: a Helm install or upgrade failed and was rolled
	// back.
	InstallFailedReason = "InstallFailed"
	// ComponentsNotReadyReason: a control-plane workload is not Available.
	ComponentsNotReadyReason = "ComponentsNotReady"
	// HealthGateFailedReason: an upgrade batch failed its health gate and
	// was moved back.
	HealthGateFailedReason = "HealthGateFailed"
	// UpgradeAbortedReason: spec.upgrade.abort moved every namespace back
	// to the previous revision; set spec.version back, or clear abort to
	// retry.
	UpgradeAbortedReason = "UpgradeAborted"
	// AnalysisFailedReason: a canary's checks failed and it was rolled back.
	AnalysisFailedReason = "AnalysisFailed"
	// WaitingReason: a phase waits for a condition outside Meshplane.
	WaitingReason = "Waiting"
	// ClusterUnreachableReason: a member cluster does not answer.
	ClusterUnreachableReason = "ClusterUnreachable"
	// InvalidCertificateReason: a supplied certificate or key is unusable.
	InvalidCertificateReason = "InvalidCertificate"
	// BreakGlassActiveReason: a BreakGlass covers this object; relaxed
	// fields are not re-applied until it is removed.
	BreakGlassActiveReason = "BreakGlassActive"
	// DeletingReason: the object is being deleted.
	DeletingReason = "Deleting"
	// RecordLostReason: the record a BreakGlass restores from was deleted
	// or replaced; nothing is restored until it is recreated or its loss
	// accepted.
	RecordLostReason = "RecordLost"
	// OutputRejectedReason: the API server (its validation or an admission
	// webhook, for example the mesh's) refused an output in the server-side
	// dry run; nothing of the generation was written and the previous
	// outputs stay in force.
	OutputRejectedReason = "OutputRejected"
	// DriftFightReason: another field manager keeps rewriting a field
	// Meshplane owns; repairs back off.
	DriftFightReason = "DriftFight"
	// WouldBeDeniedReason: a MeshAdoption wave's audit query counted
	// requests its policies would have denied; they stay in Audit.
	WouldBeDeniedReason = "WouldBeDenied"
	// AdoptionInProgressReason: a MeshAdoption wave targeting the mesh is
	// in flight; the MeshInstall's change waits for it.
	AdoptionInProgressReason = "AdoptionInProgress"
)
