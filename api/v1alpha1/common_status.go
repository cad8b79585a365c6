package v1alpha1

// Object status accessors: every Meshplane kind exposes its CommonStatus, so
// one function (internal/status.Finish) can end every Reconcile.

// GetCommonStatus returns the conditions and observedGeneration.
func (in *MeshInstall) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *MeshRevision) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *TrafficSplit) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *ZeroTrustPolicy) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *Canary) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *MeshFederation) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *BreakGlass) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the conditions and observedGeneration.
func (in *ResiliencePolicy) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the EgressPolicy's common status.
func (in *EgressPolicy) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// GetCommonStatus returns the IngressGateway's common status.
func (in *IngressGateway) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }
