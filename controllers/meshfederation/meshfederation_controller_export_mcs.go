package meshfederation

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// +kubebuilder:rbac:groups=multicluster.x-k8s.io,resources=serviceexports/status,verbs=get;patch

// The Multi-Cluster Services API's conditions on a ServiceExport
// (sigs.k8s.io/mcs-api v0.5.2): Valid (its Service exists and may be
// exported) and Conflict (the constituent Services of the exported service
// differ in ports or type across the members). On a conflict the
// ServiceImport takes the ports and type of the oldest ServiceExport (its
// creationTimestamp, then the member's name), as KEP-1645 says.

// exportEntry is one member's ServiceExport of a service.
type exportEntry struct {
	member  string
	created metav1.Time
	svc     *corev1.Service
}

// olderExport orders entries oldest first, then by member name.
func olderExport(a, b exportEntry) bool {
	if !a.created.Equal(&b.created) {
		return a.created.Before(&b.created)
	}
	return a.member < b.member
}

// portsOf renders a Service's ports as the conflict compares them: port
// number and protocol, sorted.
func portsOf(svc *corev1.Service) string {
	out := make([]string, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, fmt.Sprintf("%d/%s", p.Port, proto))
	}
	sort.Strings(out)
	return "[" + strings.Join(out, " ") + "]"
}

func typeOf(svc *corev1.Service) mcsv1beta1.ServiceImportType {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return mcsv1beta1.Headless
	}
	return mcsv1beta1.ClusterSetIP
}

// exportConflict is what the exports of one service disagree on.
type exportConflict struct {
	// reason is the MCS Conflict reason (PortConflict, TypeConflict, or
	// both joined by a comma); msg names the members and their values.
	reason, msg string
}

// exportConflicts compares, per exported service, every member's Service
// with the oldest export's, which the ServiceImport follows.
func exportConflicts(svcs []*svcMember) map[string]exportConflict {
	by := map[string][]exportEntry{}
	for _, s := range svcs {
		for _, svc := range s.export.exports {
			k := exportKey(svc.Namespace, svc.Name)
			by[k] = append(by[k], exportEntry{member: s.m.spec.Name, created: s.export.created[k], svc: svc})
		}
	}
	out := map[string]exportConflict{}
	for k, es := range by {
		if len(es) < 2 {
			continue
		}
		sort.SliceStable(es, func(i, j int) bool { return olderExport(es[i], es[j]) })
		win := es[0]
		var reasons, diffs []string
		for _, e := range es[1:] {
			if portsOf(e.svc) != portsOf(win.svc) {
				reasons = appendOnce(reasons, string(mcsv1beta1.ServiceExportReasonPortConflict))
				diffs = append(diffs, fmt.Sprintf("%s exports ports %s", e.member, portsOf(e.svc)))
			}
			if typeOf(e.svc) != typeOf(win.svc) {
				reasons = appendOnce(reasons, string(mcsv1beta1.ServiceExportReasonTypeConflict))
				diffs = append(diffs, fmt.Sprintf("%s exports type %s", e.member, typeOf(e.svc)))
			}
		}
		if len(reasons) == 0 {
			continue
		}
		out[k] = exportConflict{reason: strings.Join(reasons, ","), msg: fmt.Sprintf(
			"the exports conflict (%s): %s, and %s (the oldest export) ports %s, type %s; every ServiceImport takes %s's: make the Services alike in every member",
			strings.Join(reasons, ","), strings.Join(diffs, ", "), win.member, portsOf(win.svc), typeOf(win.svc), win.member)}
	}
	return out
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// exportConditions are the MCS conditions of member s's ServiceExport of
// k: Valid, and Conflict when it has a Service.
func exportConditions(s *svcMember, k string, conflicts map[string]exportConflict, gen int64) []metav1.Condition {
	if why, ok := s.export.invalidBy[k]; ok {
		return []metav1.Condition{{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionFalse, ObservedGeneration: gen,
			Reason: why.reason, Message: why.msg}}
	}
	conds := []metav1.Condition{{Type: string(mcsv1beta1.ServiceExportConditionValid), Status: metav1.ConditionTrue, ObservedGeneration: gen,
		Reason: string(mcsv1beta1.ServiceExportReasonValid), Message: "Service " + k + " exists and is exported"}}
	c := metav1.Condition{Type: string(mcsv1beta1.ServiceExportConditionConflict), Status: metav1.ConditionFalse, ObservedGeneration: gen,
		Reason: string(mcsv1beta1.ServiceExportReasonNoConflicts), Message: "the Services of " + k + " are alike in every exporting member"}
	if cf, ok := conflicts[k]; ok {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, cf.reason, capMsg(cf.msg)
	}
	return append(conds, c)
}

// syncExportStatus sets the MCS conditions on every ServiceExport of
// member s this federation exports, patching only those that differ: a
// no-op reconcile writes nothing.
func (r *Reconciler) syncExportStatus(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, conflicts map[string]exportConflict) {
	keys := make([]string, 0, len(s.export.ses))
	for k := range s.export.ses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		se := s.export.ses[k]
		want := append([]metav1.Condition{}, se.Status.Conditions...)
		for _, c := range exportConditions(s, k, conflicts, se.Generation) {
			apimeta.SetStatusCondition(&want, c)
		}
		if equality.Semantic.DeepEqual(want, se.Status.Conditions) {
			continue
		}
		orig := se.DeepCopy()
		se.Status.Conditions = want
		if err := s.m.client.Status().Patch(ctx, se, client.MergeFrom(orig)); err != nil {
			s.export.statusErr = fmt.Sprintf("%s: recording the conditions of ServiceExport %s: %v", s.m.spec.Name, k, err)
			continue
		}
		r.event(fed, corev1.EventTypeNormal, "ServiceExportStatus", "Patch", "cluster %s: ServiceExport %s conditions", s.m.spec.Name, k)
	}
}
