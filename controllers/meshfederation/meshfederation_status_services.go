package meshfederation

import (
	"fmt"
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// setServicesStatus records each member's service federation (network,
// gateway address, peers, ServicesConnected) and the federation's
// ServicesConnected. It returns the summary when services are not
// connected everywhere: Stalled when every problem is an answer only a
// change fixes (a conflict), else Progressing, looked at again soon.
func setServicesStatus(fed *meshv1alpha1.MeshFederation, out result) (status.Summary, bool) {
	st, gen := &fed.Status.CommonStatus, fed.Generation
	if fed.Spec.Services == nil {
		status.Remove(st, meshv1alpha1.ServicesConnectedCondition)
		return status.Summary{}, false
	}
	var problems, unsupported []string
	terminal := true
	for _, s := range out.services {
		if s.sf == nil {
			unsupported = append(unsupported, fmt.Sprintf("%s (%s)", s.m.spec.Name, s.m.spec.Provider))
		}
		ok, reason, m := memberServicesCondition(s)
		cs := memberStatus(fed, s.m.spec.Name)
		apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.ServicesConnectedCondition,
			Status: boolStatus(ok), Reason: reason, Message: m, ObservedGeneration: gen})
		setCrossClusterPolicy(cs, s, gen)
		if s.sf != nil && s.err == nil {
			rec := setMemberServices(fed, s.m.spec.Name)
			rec.Network, rec.GatewayAddress, rec.Peers = s.fm.Network, s.gateway, s.peers
		}
		if !ok && s.sf != nil {
			problems = append(problems, m)
			terminal = terminal && s.err != nil && outcome.IsTerminal(s.err) && !s.m.unreachable
		}
	}
	if len(out.services) > 0 && len(unsupported) == len(out.services) {
		// Nothing federates: spec.services asks for what no member's mesh
		// can do here, which is never dropped silently.
		m := fmt.Sprintf("spec.services: no member's mesh can federate services with Meshplane (%s); trust is shared, remove spec.services or add Istio members",
			strings.Join(unsupported, ", "))
		status.Set(st, gen, meshv1alpha1.ServicesConnectedCondition, metav1.ConditionFalse, meshv1alpha1.UnsupportedFeatureReason, m)
		return status.Summary{State: status.Stalled, Reason: meshv1alpha1.UnsupportedFeatureReason, Message: m, RequeueAfter: out.after}, true
	}
	if len(problems) == 0 {
		status.Set(st, gen, meshv1alpha1.ServicesConnectedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
			"every member reads every peer its mesh federates services with"+unlinkableNote(out.services))
		return status.Summary{}, false
	}
	m := "services are not connected: " + strings.Join(problems, "; ")
	if len(m) > 1024 {
		m = m[:1021] + "..."
	}
	reason, state := meshv1alpha1.WaitingReason, status.Progressing
	if terminal {
		reason, state = meshv1alpha1.ApplyFailedReason, status.Stalled
		for _, s := range out.services {
			if s.err != nil {
				reason = outcome.Reason(s.err, reason)
			}
		}
	}
	status.Set(st, gen, meshv1alpha1.ServicesConnectedCondition, metav1.ConditionFalse, reason, m)
	return status.Summary{State: state, Reason: reason, Message: m, RequeueAfter: out.after}, true
}

// memberServicesCondition is a member's ServicesConnected.
func memberServicesCondition(s *svcMember) (bool, string, string) {
	name := s.m.spec.Name
	switch {
	case s.sf == nil:
		return false, meshv1alpha1.UnsupportedFeatureReason, fmt.Sprintf("%s: %s", name, s.notFederating)
	case s.err == nil && s.extensionPending != "":
		return false, meshv1alpha1.WaitingReason, fmt.Sprintf("%s: %s", name, s.extensionPending)
	case s.err != nil && s.m.unreachable:
		return false, meshv1alpha1.ClusterUnreachableReason, fmt.Sprintf("%s does not answer; what it holds stays in place", name)
	case s.err != nil:
		return false, outcome.Reason(s.err, meshv1alpha1.ApplyFailedReason), msg(s.err)
	}
	var missing []string
	for _, p := range s.peers {
		if !p.Linked && p.Primary {
			missing = append(missing, fmt.Sprintf("%s is not controlled by its primary %s yet: %s", name, p.Name, p.Message))
		} else if !p.Linked && !s.unlinkable[p.Name] {
			missing = append(missing, fmt.Sprintf("%s does not read %s: %s", name, p.Name, p.Message))
		}
	}
	if s.gatewayWanted && s.gateway == "" {
		ns, svc, _ := s.sf.FederationGateway(s.fm)
		missing = append(missing, fmt.Sprintf("%s has no east-west gateway address yet (Service %s/%s has no load-balancer ingress)", name, ns, svc))
	}
	if len(missing) > 0 {
		return false, meshv1alpha1.WaitingReason, strings.Join(missing, "; ")
	}
	if s.fm.Primary != "" {
		return true, meshv1alpha1.SucceededReason, fmt.Sprintf("controlled by primary %s through %s; network %s", s.fm.Primary, s.fm.PrimaryAddress, s.fm.Network)
	}
	return true, meshv1alpha1.SucceededReason, fmt.Sprintf("reads %d peers; network %s", s.linked(), s.fm.Network)
}

// unlinkableNote names the member pairs that share trust only.
func unlinkableNote(svcs []*svcMember) string {
	var pairs []string
	seen := map[string]bool{}
	for _, s := range svcs {
		for _, p := range s.peers {
			key := min(s.m.spec.Name, p.Name) + "/" + max(s.m.spec.Name, p.Name)
			if s.unlinkable[p.Name] && !seen[key] {
				seen[key] = true
				pairs = append(pairs, key)
			}
		}
		if s.sf == nil {
			for _, o := range svcs {
				if o == s {
					continue
				}
				key := min(s.m.spec.Name, o.m.spec.Name) + "/" + max(s.m.spec.Name, o.m.spec.Name)
				if !seen[key] {
					seen[key] = true
					pairs = append(pairs, key)
				}
			}
		}
	}
	if len(pairs) == 0 {
		return ""
	}
	slices.Sort(pairs)
	return "; trust only, no service federation between " + strings.Join(pairs, ", ")
}

// memberStatus returns the member's status entry, adding it when missing.
func memberStatus(fed *meshv1alpha1.MeshFederation, name string) *meshv1alpha1.MemberClusterStatus {
	for i := range fed.Status.Clusters {
		if fed.Status.Clusters[i].Name == name {
			return &fed.Status.Clusters[i]
		}
	}
	fed.Status.Clusters = append(fed.Status.Clusters, meshv1alpha1.MemberClusterStatus{Name: name})
	return &fed.Status.Clusters[len(fed.Status.Clusters)-1]
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}
