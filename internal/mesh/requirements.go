package mesh

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TrafficSplitRequirements returns the capabilities a TrafficSplit spec
// uses, so a controller can reject it for a mesh before translating.
func TrafficSplitRequirements(spec *meshv1alpha1.TrafficSplitSpec) []Capability {
	req := []Capability{CapServiceRouting}
	switch spec.Output {
	case meshv1alpha1.OutputGatewayAPI:
		req = append(req, CapGatewayAPIOutput)
	case meshv1alpha1.OutputNative:
		// Asked for explicitly: a mesh without a native routing API must
		// say so rather than silently produce an HTTPRoute.
		req = append(req, CapNativeRoutingOutput)
	}
	if len(spec.Backends) > 1 {
		req = append(req, CapWeightedRouting)
	}
	for _, r := range spec.Rules {
		if len(r.Backends) > 1 {
			req = append(req, CapWeightedRouting)
		}
		req = append(req, MatchRequirements(r.Matches)...)
	}
	if RuleOrderConflict(spec.Rules) != "" {
		req = append(req, CapOrderedRules)
	}
	if m := spec.Mirror; m != nil {
		req = append(req, CapMirroring)
		if m.Percent != nil && *m.Percent < 100 {
			req = append(req, CapMirrorPercent)
		}
	}
	if spec.Timeout != nil {
		req = append(req, CapRequestTimeout)
	}
	req = append(req, RetryRequirements(spec.Retries)...)
	return dedupe(req)
}

// MatchRequirements returns the capabilities a list of HTTP matches uses.
func MatchRequirements(matches []meshv1alpha1.HTTPMatch) []Capability {
	var req []Capability
	for _, m := range matches {
		for _, h := range m.Headers {
			switch h.Type {
			case meshv1alpha1.HeaderMatchPrefix:
				req = append(req, CapHeaderMatchPrefix)
			case meshv1alpha1.HeaderMatchRegularExpression:
				req = append(req, CapHeaderMatchRegex)
			default:
				req = append(req, CapHeaderMatchExact)
			}
		}
		if m.Path != nil {
			req = append(req, CapPathMatch)
		}
		if m.Method != "" {
			req = append(req, CapMethodMatch)
		}
	}
	return req
}

// RetryRequirements returns the capabilities a retry policy uses.
func RetryRequirements(r *meshv1alpha1.RetryPolicy) []Capability {
	if r == nil {
		return nil
	}
	req := []Capability{CapRetries}
	if r.PerTryTimeout != nil {
		req = append(req, CapRetryPerTryTimeout)
	}
	if len(r.RetryOn) > 0 {
		req = append(req, CapRetryConditions)
	}
	return req
}

// ZeroTrustPolicyRequirements returns the capabilities a ZeroTrustPolicy
// spec uses.
func ZeroTrustPolicyRequirements(spec *meshv1alpha1.ZeroTrustPolicySpec) []Capability {
	var req []Capability
	mode := meshv1alpha1.MTLSStrict
	if spec.MTLS != nil && spec.MTLS.Mode != "" {
		mode = spec.MTLS.Mode
	}
	if mode == meshv1alpha1.MTLSPermissive {
		req = append(req, CapMTLSPermissive)
	} else {
		req = append(req, CapMTLSStrict)
	}
	if spec.Selector != nil && (len(spec.Selector.MatchLabels) > 0 || len(spec.Selector.MatchExpressions) > 0) {
		req = append(req, CapPerWorkloadMTLSMode)
	}
	if spec.DefaultAction != meshv1alpha1.ActionAllow {
		req = append(req, CapDefaultDeny)
	}
	if spec.Enforcement == meshv1alpha1.EnforcementAudit {
		req = append(req, CapPolicyAudit)
	}
	for _, r := range spec.Rules {
		for _, f := range r.From {
			if len(f.ServiceAccounts) > 0 {
				req = append(req, CapAllowFromServiceAccount)
			}
			if len(f.Namespaces) > 0 {
				req = append(req, CapAllowFromNamespace)
			}
		}
		if len(r.To) == 0 && spec.DefaultAction != meshv1alpha1.ActionAllow {
			req = append(req, CapAllowAnyPort)
		}
		for _, t := range r.To {
			if len(t.Ports) == 0 && spec.DefaultAction != meshv1alpha1.ActionAllow {
				req = append(req, CapAllowAnyPort)
			}
			if len(t.Ports) > 0 {
				req = append(req, CapAllowToPort)
			}
			if len(t.Methods) > 0 || len(t.Paths) > 0 {
				req = append(req, CapAllowHTTPMethodPath)
			}
		}
	}
	req = append(req, JWTRequirements(spec)...)
	return dedupe(req)
}

// MeshInstallRequirements returns the capabilities a MeshInstall spec uses.
func MeshInstallRequirements(spec *meshv1alpha1.MeshInstallSpec) []Capability {
	req := []Capability{CapHelmInstall}
	if spec.Profile == meshv1alpha1.ProfileAmbient {
		req = append(req, CapAmbient)
	}
	if spec.Upgrade != nil && spec.Upgrade.Strategy == meshv1alpha1.UpgradeRevisionBased {
		req = append(req, CapRevisions)
	} else {
		req = append(req, CapInPlaceUpgrade)
	}
	return req
}

func dedupe(in []Capability) []Capability {
	seen := make(map[Capability]bool, len(in))
	out := in[:0]
	for _, c := range in {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
