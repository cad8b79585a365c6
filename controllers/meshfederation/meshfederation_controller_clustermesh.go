package meshfederation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// ClusterMeshFieldManager is the field manager that applies a member's
// ClusterMesh settings to its MeshInstall (mesh.ClusterMesh), so the
// user's fields stay the user's and releasing removes exactly these.
const ClusterMeshFieldManager = "meshplane-meshfederation"

// prepareMember reads, for a reachable member, what its mesh's way of
// linking needs before any pair is looked at: the extension and gateway
// of a mesh that links peers (mesh.PeerLinks), the MeshInstall and
// endpoint of a mesh whose members connect through their installs
// (mesh.ClusterMesh).
func (r *Reconciler) prepareMember(ctx context.Context, s *svcMember) {
	r.linkExtension(ctx, s)
	r.topologyInstall(ctx, s)
	cm, ok := s.sf.(mesh.ClusterMesh)
	if !ok {
		return
	}
	installs, ok := s.meshInstalls(ctx)
	if !ok {
		return
	}
	mi, why := cm.ClusterMeshInstall(s.fm, s.m.spec.ClusterID, installs)
	if why != "" {
		s.sf, s.notFederating = nil, why
		return
	}
	s.meshInstall = mi
	s.crossCluster, s.crossClusterMsg = cm.CrossClusterPolicy(mi)
	ns, name, _ := s.sf.FederationGateway(s.fm)
	svc := &corev1.Service{}
	if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err == nil {
		s.gatewaySvc = svc
	}
}

// uniqueClusterIDs refuses the members of a mesh whose members connect
// through their installs (mesh.ClusterMesh) that share a cluster ID,
// naming both.
func uniqueClusterIDs(svcs []*svcMember) {
	first := map[int32]*svcMember{}
	var dup []*svcMember
	for _, s := range svcs {
		if _, ok := s.sf.(mesh.ClusterMesh); !ok || s.m.spec.ClusterID == 0 {
			continue
		}
		o, seen := first[s.m.spec.ClusterID]
		if !seen {
			first[s.m.spec.ClusterID] = s
			continue
		}
		why := fmt.Sprintf("spec.clusters: %s and %s both have clusterID %d; ClusterMesh needs a cluster ID unique across the members (1-255)",
			o.m.spec.Name, s.m.spec.Name, s.m.spec.ClusterID)
		o.notFederating, s.notFederating = why, why
		dup = append(dup, o, s)
	}
	for _, s := range dup {
		s.sf = nil
	}
}

// clusterMeshPair records whether member s, connected through its
// install, reaches peer p, and collects p's endpoint. A peer that does not
// answer, or whose endpoint has no address now, keeps the endpoint s
// holds. It returns false when s is not such a member.
func clusterMeshPair(s, p *svcMember, ps *meshv1alpha1.PeerStatus) bool {
	cm, ok := s.sf.(mesh.ClusterMesh)
	if !ok {
		return false
	}
	var why string
	var peer meshv1alpha1.CiliumClusterMeshPeer
	switch {
	case p.m.spec.Provider != s.m.spec.Provider:
		why = mixedPair(s, p)
	case p.sf == nil:
		why = fmt.Sprintf("%s: %s", p.m.spec.Name, p.notFederating)
	case p.m.client == nil || p.m.unreachable:
		why = fmt.Sprintf("%s does not answer; %s keeps the endpoint it holds", p.m.spec.Name, s.m.spec.Name)
	default:
		peer, why = cm.ClusterMeshPeer(p.fm, p.gatewaySvc)
	}
	ps.Linked, ps.Message = why == "", why
	if why == "" {
		s.cmPeers = append(s.cmPeers, peer)
	} else if held, ok := heldPeer(s.meshInstall, p.m.spec.Name); ok && p.sf != nil && p.m.spec.Provider == s.m.spec.Provider {
		s.cmPeers = append(s.cmPeers, held)
	}
	return true
}

// mixedPair says that two members of different meshes share trust only.
func mixedPair(s, p *svcMember) string {
	return fmt.Sprintf("%s (%s) and %s (%s) share trust but cannot federate services: their meshes do not discover each other's endpoints",
		s.m.spec.Name, s.m.spec.Provider, p.m.spec.Name, p.m.spec.Provider)
}

// heldPeer is the endpoint of peer name the MeshInstall's settings hold.
func heldPeer(mi *meshv1alpha1.MeshInstall, name string) (meshv1alpha1.CiliumClusterMeshPeer, bool) {
	if mi == nil || mi.Spec.Cilium == nil || mi.Spec.Cilium.ClusterMesh == nil {
		return meshv1alpha1.CiliumClusterMeshPeer{}, false
	}
	for _, p := range mi.Spec.Cilium.ClusterMesh.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return meshv1alpha1.CiliumClusterMeshPeer{}, false
}

// applyClusterMesh applies the member's ClusterMesh settings to its
// MeshInstall when they differ from what it holds, recording the
// MeshInstall in status first so a release finds it.
func (r *Reconciler) applyClusterMesh(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, patcher *status.Patcher) error {
	if staleTopology(fed, s) {
		r.releaseClusterMesh(ctx, fed, s.m)
	}
	spec := installSettings(s)
	if spec == nil || s.meshInstall == nil {
		return nil
	}
	digest := settingsDigest(spec)
	rec := memberServices(fed, s.m.spec.Name)
	if rec.ClusterMeshInstall == s.meshInstall.Name && rec.SettingsDigest == digest && holds(s.meshInstall, spec) {
		return nil
	}
	// Record first, under the lock even when the record is there already:
	// a reconcile that read a stale federation (whose settings an earlier
	// reconcile already released) must not write settings that no record
	// would ever remove.
	set := setMemberServices(fed, s.m.spec.Name)
	set.ClusterMeshInstall, set.SettingsDigest = s.meshInstall.Name, digest
	if err := patcher.Commit(ctx, fed); err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind("MeshInstall"))
	u.SetName(s.meshInstall.Name)
	if err := s.m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(ClusterMeshFieldManager)); err != nil {
		if apierrors.IsConflict(err) {
			return outcome.Conflict("cluster %s: the settings this federation writes into MeshInstall %s are set by another field manager: %v", s.m.spec.Name, s.meshInstall.Name, err)
		}
		return r.servicesErr(s, err)
	}
	s.settingsWritten = true
	r.event(fed, corev1.EventTypeNormal, "ServicesLinked", "Apply", "cluster %s: federation settings of MeshInstall %s with %d peers", s.m.spec.Name, s.meshInstall.Name, max(len(s.cmPeers), len(s.linkPeers)))
	return nil
}

// installSettings is the part of the member's MeshInstall's spec the
// federation sets: its ClusterMesh settings (mesh.ClusterMesh), its links
// extension's (mesh.ExtensionInstaller), or its topology settings
// (mesh.FederationTopology); nil for none.
func installSettings(s *svcMember) map[string]any {
	switch f := s.sf.(type) {
	case mesh.ClusterMesh:
		slices.SortFunc(s.cmPeers, func(a, b meshv1alpha1.CiliumClusterMeshPeer) int {
			return compareStrings(a.Name, b.Name)
		})
		return f.ClusterMeshSpec(s.fm, s.m.spec.ClusterID, s.cmPeers)
	case mesh.ExtensionInstaller:
		return f.ExtensionInstallSpec(s.fm, s.linkPeers)
	case mesh.FederationTopology:
		return s.topologySpec
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// holds reports whether the MeshInstall's spec holds every value of
// spec's settings. Values other managers set beside them (another item of
// a list) do not count; settings that changed (a peer removed) are told by
// their digest.
func holds(mi *meshv1alpha1.MeshInstall, spec map[string]any) bool {
	b, err := json.Marshal(mi.Spec)
	if err != nil {
		return false
	}
	var live map[string]any
	if json.Unmarshal(b, &live) != nil {
		return false
	}
	w, err := json.Marshal(spec)
	if err != nil {
		return false
	}
	var want map[string]any
	if json.Unmarshal(w, &want) != nil {
		return false
	}
	return holdsValue(live, want)
}

// holdsValue reports whether live holds want: every key of a map, every
// item of a list (an item contained in some live item), equal scalars.
func holdsValue(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !holdsValue(l[k], v) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok {
			return len(w) == 0
		}
		for _, v := range w {
			if !slices.ContainsFunc(l, func(x any) bool { return holdsValue(x, v) }) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(live, want)
}

// settingsDigest identifies a member's settings (SettingsDigest).
func settingsDigest(spec map[string]any) string {
	b, _ := json.Marshal(spec) // map keys are sorted: stable
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// releaseClusterMesh removes the ClusterMesh settings service federation
// applied to the member's MeshInstall (an empty configuration applied by
// the same field manager); false while the member does not answer.
func (r *Reconciler) releaseClusterMesh(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member) bool {
	name := memberServices(fed, m.spec.Name).ClusterMeshInstall
	if name == "" {
		return true
	}
	if m.client == nil || m.unreachable {
		return false
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind("MeshInstall"))
	u.SetName(name)
	mi := &meshv1alpha1.MeshInstall{}
	switch err := m.client.Get(ctx, client.ObjectKey{Name: name}, mi); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false
	default:
		if err := m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(ClusterMeshFieldManager)); err != nil && !apierrors.IsNotFound(err) {
			return false
		}
		r.event(fed, corev1.EventTypeNormal, "ServicesUnlinked", "Delete", "cluster %s: ClusterMesh settings removed from MeshInstall %s", m.spec.Name, name)
	}
	rel := setMemberServices(fed, m.spec.Name)
	rel.ClusterMeshInstall, rel.SettingsDigest = "", ""
	return true
}

// setCrossClusterPolicy records, for a member connected through its
// install, whether its network policies reach the other clusters.
func setCrossClusterPolicy(cs *meshv1alpha1.MemberClusterStatus, s *svcMember, gen int64) {
	if s.sf == nil || s.meshInstall == nil || s.crossClusterMsg == "" {
		apimeta.RemoveStatusCondition(&cs.Conditions, meshv1alpha1.CrossClusterPolicyCondition)
		return
	}
	c := metav1.Condition{Type: meshv1alpha1.CrossClusterPolicyCondition, Status: metav1.ConditionTrue, Reason: meshv1alpha1.SucceededReason,
		Message: s.crossClusterMsg, ObservedGeneration: gen}
	if !s.crossCluster {
		c.Status, c.Reason = metav1.ConditionFalse, meshv1alpha1.LocalClusterPolicyDefaultReason
	}
	apimeta.SetStatusCondition(&cs.Conditions, c)
}

// releaseRefused releases a member that cannot federate services while
// spec.services stays: its ServicesConnected condition is kept as it is
// (setServicesStatus sets it again), so a refused member's condition keeps
// its lastTransitionTime and a no-op reconcile writes no status.
func (r *Reconciler) releaseRefused(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member) {
	var kept *metav1.Condition
	cs := memberStatus(fed, m.spec.Name)
	if c := apimeta.FindStatusCondition(cs.Conditions, meshv1alpha1.ServicesConnectedCondition); c != nil {
		kept = c.DeepCopy()
	}
	r.releaseMember(ctx, fed, m)
	if kept != nil {
		cs = memberStatus(fed, m.spec.Name)
		apimeta.SetStatusCondition(&cs.Conditions, *kept)
	}
}
