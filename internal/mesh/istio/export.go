package istio

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Service export in Istio multi-primary (sidecar): every Service of a
// member whose istiod reads its peers is global by default, so an export
// needs no object of its own; meshConfig.serviceSettings decides which
// hosts stay cluster-local. LocalFirst failover is a DestinationRule per
// exported host in every member that calls it: locality load balancing,
// which Istio only applies with outlier detection.
const (
	// FailoverSuffix ends the name of an exported service's failover
	// DestinationRule (<service>-meshplane-failover).
	FailoverSuffix = "-meshplane-failover"
	// clusterDomain is the DNS suffix of Services Meshplane assumes.
	clusterDomain = "svc.cluster.local"
)

// exportHost is the FQDN of an exported service.
func exportHost(svc mesh.ExportedService) string {
	return svc.Name + "." + svc.Namespace + "." + clusterDomain
}

// ExportOutputs is, with failover LocalFirst, a DestinationRule on the
// exported service's host with locality load balancing (the caller's
// region/zone/subzone first, then the others', as Istio orders them) and
// the outlier detection failover needs (5 consecutive 5xx, every 10s,
// ejected for 30s, up to all endpoints of a locality).
func (*Provider) ExportOutputs(_ mesh.FederationMember, svc mesh.ExportedService) []client.Object {
	if svc.Failover != meshv1alpha1.FailoverLocalFirst {
		return nil
	}
	return []client.Object{&istionetworking.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "DestinationRule"},
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + FailoverSuffix},
		Spec: networkingv1alpha3.DestinationRule{Host: exportHost(svc), TrafficPolicy: &networkingv1alpha3.TrafficPolicy{
			LoadBalancer: &networkingv1alpha3.LoadBalancerSettings{
				LocalityLbSetting: &networkingv1alpha3.LocalityLoadBalancerSetting{Enabled: wrapperspb.Bool(true)},
			},
			OutlierDetection: &networkingv1alpha3.OutlierDetection{
				Consecutive_5XxErrors: wrapperspb.UInt32(5),
				Interval:              durationpb.New(10e9),
				BaseEjectionTime:      durationpb.New(30e9),
				MaxEjectionPercent:    100,
			},
		}},
	}}
}

// ExportOutputKinds is DestinationRule.
func (*Provider) ExportOutputKinds() []client.ObjectList {
	return []client.ObjectList{&istionetworking.DestinationRuleList{}}
}

// ExportOverlap names a DestinationRule in the service's namespace that
// already configures its host (short, namespaced or full name, without a
// workload selector): Istio would use one of the two rules' traffic
// policies, so the failover would silently not apply.
func (*Provider) ExportOverlap(svc mesh.ExportedService, existing []client.Object) string {
	for _, o := range existing {
		dr, ok := o.(*istionetworking.DestinationRule)
		if !ok || dr.Spec.WorkloadSelector != nil || !sameHost(dr.Spec.Host, dr.Namespace, svc) {
			continue
		}
		return fmt.Sprintf("DestinationRule %s/%s already configures host %s; failover LocalFirst needs its own trafficPolicy "+
			"(loadBalancer.localityLbSetting and outlierDetection): add them to that rule, or remove it",
			dr.Namespace, dr.Name, dr.Spec.Host)
	}
	return ""
}

// sameHost reports whether a DestinationRule host written in namespace ns
// names the exported service.
func sameHost(h, ns string, svc mesh.ExportedService) bool {
	full := exportHost(svc)
	switch {
	case h == full || h == svc.Name+"."+svc.Namespace || h == svc.Name+"."+svc.Namespace+".svc":
		return true
	case !strings.Contains(h, "."):
		return h == svc.Name && ns == svc.Namespace
	}
	return false
}

// ExportWriterRules: DestinationRules in the namespaces of exported
// services (any namespace: create cannot be limited by name).
func (*Provider) ExportWriterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{"networking.istio.io"}, Resources: []string{"destinationrules"},
		Verbs: []string{"get", "list", "create", "patch", "delete"}}}
}

var _ mesh.ServiceExporter = (*Provider)(nil)

// istiodValues are the values a MeshInstall gives istiod that service
// federation reads: spec.values, then spec.components[istiod].values over
// them (maps merged, lists replaced).
func istiodValues(mi *meshv1alpha1.MeshInstall) map[string]any {
	out := map[string]any{}
	if mi == nil {
		return out
	}
	if mi.Spec.Values != nil {
		var v map[string]any
		if json.Unmarshal(mi.Spec.Values.Raw, &v) == nil {
			mergeValues(out, v)
		}
	}
	for _, c := range mi.Spec.Components {
		var v map[string]any
		if c.Chart == "istiod" && json.Unmarshal(c.Values.Raw, &v) == nil {
			mergeValues(out, v)
		}
	}
	return out
}

func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// valueAt reads a string at a dotted path of values.
func valueAt(v map[string]any, path ...string) (string, bool) {
	for i, p := range path {
		x, ok := v[p]
		if !ok {
			return "", false
		}
		if i == len(path)-1 {
			s, ok := x.(string)
			return s, ok
		}
		if v, ok = x.(map[string]any); !ok {
			return "", false
		}
	}
	return "", false
}

// TopologyCheck compares istiod's global.meshID, global.multiCluster.
// clusterName and global.network (spec.values or the istiod component
// overriding spec.istio) with the member's.
func (*Provider) TopologyCheck(mi *meshv1alpha1.MeshInstall, m mesh.FederationMember) string {
	if mi == nil {
		return fmt.Sprintf("no MeshInstall installs Istio here: make sure istiod runs with global.meshID=%s, global.multiCluster.clusterName=%s and global.network=%s", m.MeshID, m.Name, m.Network)
	}
	var is meshv1alpha1.IstioInstallSpec
	if mi.Spec.Istio != nil {
		is = *mi.Spec.Istio
	}
	vals := istiodValues(mi)
	var wrong []string
	check := func(field, fromSpec, want string, path ...string) {
		got, where := fromSpec, "spec.istio."+field
		if v, ok := valueAt(vals, path...); ok {
			got, where = v, "values "+strings.Join(path, ".")
		}
		if got != want {
			wrong = append(wrong, fmt.Sprintf("%s is %q, not %q", where, got, want))
		}
	}
	check("meshID", is.MeshID, m.MeshID, "global", "meshID")
	check("clusterName", is.ClusterName, m.Name, "global", "multiCluster", "clusterName")
	check("network", is.Network, m.Network, "global", "network")
	if len(wrong) == 0 {
		return ""
	}
	return fmt.Sprintf("MeshInstall %s: %s; set spec.istio {meshID: %s, clusterName: %s, network: %s} (and no other value in spec.values or the istiod component)",
		mi.Name, strings.Join(wrong, ", "), m.MeshID, m.Name, m.Network)
}

// serviceSetting is one entry of meshConfig.serviceSettings.
type serviceSetting struct {
	Settings struct {
		ClusterLocal bool `json:"clusterLocal"`
	} `json:"settings"`
	Hosts []string `json:"hosts"`
}

// clusterLocalHosts reads meshConfig.serviceSettings as istiod does:
// specific and wildcard hosts with their clusterLocal setting.
func clusterLocalHosts(vals map[string]any) (specific, wildcard map[string]bool) {
	specific, wildcard = map[string]bool{}, map[string]bool{}
	mc, _ := vals["meshConfig"].(map[string]any)
	raw, err := json.Marshal(mc["serviceSettings"])
	var settings []serviceSetting
	if err != nil || json.Unmarshal(raw, &settings) != nil {
		return specific, wildcard
	}
	for _, s := range settings {
		for _, h := range s.Hosts {
			if strings.HasPrefix(h, "*") {
				wildcard[h] = s.Settings.ClusterLocal
			} else {
				specific[h] = s.Settings.ClusterLocal
			}
		}
	}
	return specific, wildcard
}

// isClusterLocal is istiod's most specific match: an exact host, else the
// longest wildcard that matches; kube-system stays local by default.
func isClusterLocal(h string, specific, wildcard map[string]bool) bool {
	if local, ok := specific[h]; ok {
		return local
	}
	best, local := -1, strings.HasSuffix(h, ".kube-system."+clusterDomain)
	for w, l := range wildcard {
		if strings.HasSuffix(h, w[1:]) && len(w) > best {
			best, local = len(w), l
		}
	}
	return local
}

// ExportScope, in ambient mode, is enforced by the istio.io/global label;
// in sidecar mode it evaluates meshConfig.serviceSettings of the exporter's
// istiod values: the exported host must not be cluster-local, and every
// host that is not exported must be (a catch-all "*" that is local, no
// other wildcard that is not, no other specific host that is not).
func (*Provider) ExportScope(mi *meshv1alpha1.MeshInstall, exported []mesh.ExportedService, svc mesh.ExportedService) mesh.ExportScope {
	if mi != nil && mi.Spec.Profile == meshv1alpha1.ProfileAmbient {
		// Ambient multicluster: only Services labelled istio.io/global
		// (ServiceMarks) are global.
		return mesh.ExportScope{Effective: "global (labelled " + GlobalLabel + "); services without a ServiceExport are not labelled and stay cluster-local (ambient)", Enforced: true}
	}
	specific, wildcard := clusterLocalHosts(istiodValues(mi))
	hosts := map[string]bool{}
	for _, e := range exported {
		hosts[exportHost(e)] = true
	}
	if isClusterLocal(exportHost(svc), specific, wildcard) {
		return mesh.ExportScope{Effective: "cluster-local: meshConfig.serviceSettings keeps " + exportHost(svc) + " local, so its export has no effect",
			Fix: scopeFix(mi, hosts)}
	}
	enforced := wildcard["*"]
	for w, local := range wildcard {
		enforced = enforced && (local || w == "*")
	}
	for h, local := range specific {
		enforced = enforced && (local || hosts[h])
	}
	if enforced {
		return mesh.ExportScope{Effective: "global; services without a ServiceExport stay cluster-local", Enforced: true}
	}
	return mesh.ExportScope{Effective: "global; services without a ServiceExport are global too (Istio multi-primary default)", Fix: scopeFix(mi, hosts)}
}

// scopeFix names the istiod values that keep every host but the exported
// ones cluster-local.
func scopeFix(mi *meshv1alpha1.MeshInstall, exported map[string]bool) string {
	hosts := make([]string, 0, len(exported))
	for h := range exported {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	fix, _ := json.Marshal(map[string]any{"meshConfig": map[string]any{"serviceSettings": []any{
		map[string]any{"settings": map[string]any{"clusterLocal": true}, "hosts": []string{"*"}},
		map[string]any{"settings": map[string]any{"clusterLocal": false}, "hosts": hosts},
	}}})
	where := "the istiod values of the cluster's control plane"
	if mi != nil {
		where = fmt.Sprintf("MeshInstall %s spec.components[chart=istiod].values", mi.Name)
	}
	return fmt.Sprintf("set %s to %s", where, fix)
}
