package v1alpha1

// Every kind decodes tolerantly: see decode.go.

// UnmarshalJSON decodes a MeshInstall; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *MeshInstall) UnmarshalJSON(b []byte) error {
	type plain MeshInstall
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a MeshRevision; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *MeshRevision) UnmarshalJSON(b []byte) error {
	type plain MeshRevision
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a TrafficSplit; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *TrafficSplit) UnmarshalJSON(b []byte) error {
	type plain TrafficSplit
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a ZeroTrustPolicy; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *ZeroTrustPolicy) UnmarshalJSON(b []byte) error {
	type plain ZeroTrustPolicy
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a Canary; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *Canary) UnmarshalJSON(b []byte) error {
	type plain Canary
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a MeshFederation; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *MeshFederation) UnmarshalJSON(b []byte) error {
	type plain MeshFederation
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a BreakGlass; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *BreakGlass) UnmarshalJSON(b []byte) error {
	type plain BreakGlass
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a ResiliencePolicy; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *ResiliencePolicy) UnmarshalJSON(b []byte) error {
	type plain ResiliencePolicy
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes an EgressPolicy; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *EgressPolicy) UnmarshalJSON(b []byte) error {
	type plain EgressPolicy
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes an IngressGateway; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *IngressGateway) UnmarshalJSON(b []byte) error {
	type plain IngressGateway
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

// UnmarshalJSON decodes a ProxyPolicy; fields stored before a rule existed that
// cannot be decoded are left out and noted in Status.DecodeError.
func (in *ProxyPolicy) UnmarshalJSON(b []byte) error {
	type plain ProxyPolicy
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}
