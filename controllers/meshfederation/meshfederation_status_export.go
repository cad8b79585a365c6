package meshfederation

import (
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/status"
)

// problem is one thing missing for an exported service, with the reason
// the condition names when it comes first.
type problem struct{ reason, msg string }

// setExportsStatus records every exported service (status.exports), each
// member's TopologyConfigured, and ServicesExported. It does not decide
// Ready: an export that is not complete is reported, the federation's
// trust and links stand.
func setExportsStatus(fed *meshv1alpha1.MeshFederation, out result) {
	st, gen := &fed.Status.CommonStatus, fed.Generation
	if fed.Spec.Services == nil {
		status.Remove(st, meshv1alpha1.ServicesExportedCondition)
		fed.Status.Exports = nil
		for i := range fed.Status.Clusters {
			apimeta.RemoveStatusCondition(&fed.Status.Clusters[i].Conditions, meshv1alpha1.TopologyConfiguredCondition)
		}
		return
	}
	setTopology(fed, out.services)
	all := aggregateExports(fed, out.services)
	var problems []problem
	for _, s := range out.services {
		switch {
		case s.export.unknown != "":
			problems = append(problems, problem{meshv1alpha1.WaitingReason, s.export.unknown})
		case s.export.note != "" && len(all) > 0:
			problems = append(problems, problem{meshv1alpha1.OutputKindMissingReason, s.export.note})
		}
		for _, in := range s.export.invalid {
			problems = append(problems, problem{meshv1alpha1.ReferenceNotFoundReason, in})
		}
		if s.export.statusErr != "" {
			problems = append(problems, problem{meshv1alpha1.WaitingReason, s.export.statusErr})
		}
	}
	fed.Status.Exports = make([]meshv1alpha1.ExportedServiceStatus, 0, len(all))
	conflicts := exportConflicts(out.services)
	for _, svc := range all {
		es, ps := exportStatus(svc, out.services, conflicts)
		fed.Status.Exports = append(fed.Status.Exports, es)
		for _, p := range ps {
			problems = append(problems, problem{p.reason, svc.Namespace + "/" + svc.Name + ": " + p.msg})
		}
	}
	if len(fed.Status.Exports) == 0 {
		fed.Status.Exports = nil
	}
	if len(problems) > 0 {
		var msgs []string
		for _, p := range problems {
			msgs = append(msgs, p.msg)
		}
		status.Set(st, gen, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, problems[0].reason, capMsg(strings.Join(msgs, "; ")))
		return
	}
	m := "no service is exported: create a ServiceExport (multicluster.x-k8s.io) next to a Service in a member"
	if len(all) > 0 {
		m = fmt.Sprintf("%d services exported; each is imported where its namespace exists and reachable", len(all))
	}
	status.Set(st, gen, meshv1alpha1.ServicesExportedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, m)
}

func capMsg(m string) string {
	if len(m) > 1024 {
		return m[:1021] + "..."
	}
	return m
}

// setTopology sets each exporting-capable member's TopologyConfigured.
func setTopology(fed *meshv1alpha1.MeshFederation, svcs []*svcMember) {
	for _, s := range svcs {
		cs := memberStatus(fed, s.m.spec.Name)
		if s.export.se == nil {
			apimeta.RemoveStatusCondition(&cs.Conditions, meshv1alpha1.TopologyConfiguredCondition)
			continue
		}
		c := metav1.Condition{Type: meshv1alpha1.TopologyConfiguredCondition, ObservedGeneration: fed.Generation,
			Status: metav1.ConditionTrue, Reason: meshv1alpha1.SucceededReason,
			Message: fmt.Sprintf("the install carries mesh ID %s, cluster name %s and network %s", s.fm.MeshID, s.fm.Name, s.fm.Network)}
		if why := s.export.se.TopologyCheck(s.export.mi, s.fm); why != "" {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, meshv1alpha1.TopologyMismatchReason, capMsg(why)
			if s.export.mi == nil {
				c.Status, c.Reason = metav1.ConditionUnknown, meshv1alpha1.NotInstalledByMeshplaneReason
			}
		}
		apimeta.SetStatusCondition(&cs.Conditions, c)
	}
}

// exportStatus is one exported service's status and what it misses.
func exportStatus(svc mesh.ExportedService, svcs []*svcMember, conflicts map[string]exportConflict) (meshv1alpha1.ExportedServiceStatus, []problem) {
	k := exportKey(svc.Namespace, svc.Name)
	es := meshv1alpha1.ExportedServiceStatus{Namespace: svc.Namespace, Name: svc.Name, Type: string(serviceImport(svc).Spec.Type),
		ExportedBy: svc.Exporters}
	var ps []problem
	if cf, ok := conflicts[k]; ok {
		ps = append(ps, problem{meshv1alpha1.ConflictReason, cf.msg})
	}
	var importers []*svcMember
	var notes []string
	for _, s := range svcs {
		switch x := &s.export; {
		case x.imported[k]:
			es.ImportedBy = append(es.ImportedBy, s.m.spec.Name)
			importers = append(importers, s)
		case x.skipped[k] != "":
			notes = append(notes, x.skipped[k])
		}
		if why := s.export.refused[k]; why != "" {
			ps = append(ps, problem{meshv1alpha1.ConflictReason, why})
		}
		if why := s.export.unsupported[k]; why != "" {
			ps = append(ps, problem{meshv1alpha1.UnsupportedFeatureReason, why})
		}
	}
	ready := withEndpoints(svcs, k)
	if len(ready) == 0 {
		ps = append(ps, problem{meshv1alpha1.WaitingReason, "no exporter has a ready endpoint (" + strings.Join(svc.Exporters, ", ") + ")"})
	}
	es.Reachable = reachable(ready, importers)
	if !es.Reachable && len(ready) > 0 {
		ps = append(ps, problem{meshv1alpha1.WaitingReason, "not every importer reads an exporter with a ready endpoint (" + strings.Join(ready, ", ") + "): see status.clusters[].services.peers"})
	}
	var scopes []string
	for _, s := range svcs {
		if !contains(svc.Exporters, s.m.spec.Name) || s.export.se == nil {
			continue
		}
		if s.gatewayWanted && s.gateway == "" {
			ps = append(ps, problem{meshv1alpha1.WaitingReason, s.m.spec.Name + " has no east-west gateway address yet"})
		} else if s.gateway != "" {
			es.GatewayAddresses = append(es.GatewayAddresses, s.m.spec.Name+"="+s.gateway)
		}
		sc := s.export.se.ExportScope(s.export.mi, memberExports(s, svc.Failover), svc)
		scopes = append(scopes, s.m.spec.Name+": "+sc.Effective)
		if !sc.Enforced {
			ps = append(ps, problem{meshv1alpha1.ScopeNotEnforcedReason, s.m.spec.Name + ": " + sc.Effective + "; " + sc.Fix})
		}
	}
	es.Scope = capMsg(strings.Join(scopes, "; "))
	es.Ready = len(ps) == 0
	var msgs []string
	for _, p := range ps {
		msgs = append(msgs, p.msg)
	}
	msgs = append(msgs, notes...)
	if es.Ready {
		msgs = append([]string{"exported by " + strings.Join(es.ExportedBy, ", ") + ", imported by " + strings.Join(es.ImportedBy, ", ")}, notes...)
	}
	es.Message = capMsg(strings.Join(msgs, "; "))
	return es, ps
}

// reachable: an exporter with a ready endpoint that every importer other
// than itself reads (its remote credential linked).
func reachable(ready []string, importers []*svcMember) bool {
	for _, e := range ready {
		ok := true
		for _, i := range importers {
			if i.m.spec.Name != e && !peerLinked(i, e) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func peerLinked(s *svcMember, name string) bool {
	for _, p := range s.peers {
		if p.Name == name {
			return p.Linked
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// memberExports are the services s exports, as its mesh sees them.
func memberExports(s *svcMember, f meshv1alpha1.ExportFailover) []mesh.ExportedService {
	out := make([]mesh.ExportedService, 0, len(s.export.exports))
	for _, svc := range s.export.exports {
		out = append(out, mesh.ExportedService{Namespace: svc.Namespace, Name: svc.Name, Ports: svc.Spec.Ports, Failover: f})
	}
	return out
}
