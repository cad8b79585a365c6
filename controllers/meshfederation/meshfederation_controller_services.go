package meshfederation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/status"
)

// ServicesFinalizer removes what service federation wrote into the members
// when a federation is deleted (trust material stays).
const ServicesFinalizer = "meshplane.io/meshfederation-services"

// Token lifetimes of the readers' credentials: a token is requested for
// TokenLifetime and replaced once less than TokenRenewBefore is left.
const (
	TokenLifetime    = 30 * 24 * time.Hour
	TokenRenewBefore = 10 * 24 * time.Hour
)

// svcMember is one member's service federation during a reconcile.
type svcMember struct {
	m  *member
	sf mesh.ServiceFederation
	fm mesh.FederationMember
	// notFederating says why the member's mesh federates no services.
	notFederating string
	// server and caData are how peers' control planes reach its API
	// server; token is its reader's token, when one could be had.
	server string
	caData []byte
	// serverWhy says why server is unknown.
	serverWhy string
	token     string
	// tokenErr says why there is no token.
	tokenErr string
	peers    []meshv1alpha1.PeerStatus
	// unlinkable are the peers whose meshes cannot federate services with
	// this member's: reported, never waited for.
	unlinkable map[string]bool
	err        error
	applied    apply.Result
	gateway    string
	// gatewayWanted is true when the member has an east-west gateway.
	gatewayWanted bool
	// export is the member's part in service export
	// (meshfederation_controller_export.go).
	export memberExport
	// gatewaySvc is the member's gateway Service as its peers' links copy
	// it (mesh.PeerLinks), when it could be read.
	gatewaySvc *corev1.Service
	// meshInstall is the MeshInstall a member connected through its
	// install (mesh.ClusterMesh) holds its settings in; cmPeers are the
	// peers' endpoints it gets; crossCluster and crossClusterMsg say
	// whether its policies reach the other clusters.
	// With mesh.ExtensionInstaller, meshInstall holds the extension's
	// settings, and extensionPending says the extension is being installed
	// (nothing else is written into the member until it is served).
	meshInstall      *meshv1alpha1.MeshInstall
	extensionPending string
	// linkPeers are the members of the same mesh that federate services.
	linkPeers []string
	// installs are the member's MeshInstalls, listed once per reconcile
	// (meshInstalls); installsErr says why they could not be.
	installs        []meshv1alpha1.MeshInstall
	installsRead    bool
	installsErr     error
	cmPeers         []meshv1alpha1.CiliumClusterMeshPeer
	crossCluster    bool
	crossClusterMsg string
	// topologySpec are the topology settings a member's MeshInstall gets
	// (mesh.FederationTopology), nil when it needs none.
	topologySpec map[string]any
	// remoteWhy says what a remote (FederationMember.Primary) misses to be
	// controlled by its primary; empty when nothing.
	remoteWhy string
	// settingsWritten is true when this reconcile wrote settings into the
	// member's MeshInstall: the next reconcile (soon) reports what the
	// install then carries (TopologyConfigured), as MeshInstalls of
	// remote members are not watched.
	settingsWritten bool
}

// linked counts the member's linked peers.
func (s *svcMember) linked() int {
	n := 0
	for _, p := range s.peers {
		if p.Linked {
			n++
		}
	}
	return n
}

// servicesPending reports whether a member waits for something (a peer's
// reader, a gateway address, a cluster): remote members are not watched.
func servicesPending(svcs []*svcMember) bool {
	for _, s := range svcs {
		// A service not imported, or whose mesh outputs a foreign object
		// blocks, is re-checked on the poll: foreign objects are not
		// watched.
		if len(s.export.skipped)+len(s.export.refused)+len(s.export.unsupported) > 0 {
			return true
		}
		if s.sf == nil {
			continue
		}
		if s.settingsWritten {
			return true
		}
		if ok, _, _ := memberServicesCondition(s); !ok {
			return true
		}
	}
	return false
}

// federationMember is the member as its mesh sees it.
func federationMember(fed *meshv1alpha1.MeshFederation, spec meshv1alpha1.MemberCluster) mesh.FederationMember {
	fm := mesh.FederationMember{Name: spec.Name, Namespace: spec.Namespace, Network: spec.Network, MeshID: fed.Name, EastWestGateway: true}
	if fm.Network == "" {
		fm.Network = spec.Name
	}
	if s := fed.Spec.Services; s != nil {
		if s.MeshID != "" {
			fm.MeshID = s.MeshID
		}
		if s.EastWestGateway != nil {
			fm.EastWestGateway = *s.EastWestGateway
		}
	}
	return fm
}

// reconcileServices links every pair of members whose meshes federate
// services with each other, writing into each member its reader, its own
// outputs and its credentials for the peers, in one apply per member that
// prunes what is no longer wanted. Without spec.services it removes what
// an earlier generation wrote.
func (r *Reconciler) reconcileServices(ctx context.Context, fed *meshv1alpha1.MeshFederation, members []*member, patcher *status.Patcher, now time.Time) []*svcMember {
	if fed.Spec.Services == nil {
		r.releaseServices(ctx, fed, members)
		return nil
	}
	controllerutil.AddFinalizer(fed, ServicesFinalizer)
	svcs := make([]*svcMember, 0, len(members))
	for _, m := range members {
		s := &svcMember{m: m, fm: federationMember(fed, m.spec)}
		if sf, err := r.Registry.ServiceFederation(m.spec.Provider); err != nil {
			s.notFederating = fmt.Sprintf("Meshplane does not federate %s services across clusters (trust is shared)", m.spec.Provider)
		} else {
			s.sf = sf
		}
		svcs = append(svcs, s)
	}
	uniqueClusterIDs(svcs)
	for _, s := range svcs {
		if s.sf != nil && s.m.client != nil && !s.m.unreachable {
			r.refuseInstall(ctx, s)
		}
		if s.sf != nil && s.m.client != nil && !s.m.unreachable {
			r.prepareMember(ctx, s)
		}
		if s.sf != nil && s.m.client != nil {
			r.endpoint(ctx, s)
		}
	}
	r.primaryRemote(ctx, svcs)
	exports := r.collectExports(ctx, fed, svcs)
	providers := memberProviders(svcs)
	for _, s := range svcs {
		if s.sf == nil && s.m.client != nil && !s.m.unreachable {
			// A member whose mesh no longer federates services (its install
			// changed) gives up what it held.
			r.releaseRefused(ctx, fed, s.m)
		}
		if s.sf == nil || s.m.client == nil || s.m.unreachable {
			s.err = s.m.err
			continue
		}
		s.linkPeers = linkPeers(s, svcs)
		if s.extensionPending != "" {
			s.err = r.applyClusterMesh(ctx, fed, s, patcher)
			continue
		}
		creds := r.peerCredentials(ctx, fed, s, svcs, now)
		creds = append(creds, r.exportObjects(ctx, fed, s, exports, providers)...)
		certs, err := r.federationCertificates(ctx, fed, s, now)
		if err != nil {
			s.err = err
			continue
		}
		creds = append(creds, certs...)
		s.err = r.applyServices(ctx, fed, s, creds, patcher)
		if s.err == nil {
			s.err = r.applyClusterMesh(ctx, fed, s, patcher)
		}
		if s.err == nil {
			s.gateway = r.gatewayAddress(ctx, s)
			r.syncImportStatus(ctx, fed, s, exports, providers)
		}
	}
	conflicts := exportConflicts(svcs)
	for _, s := range svcs {
		if s.err == nil && s.sf != nil && s.extensionPending == "" && s.m.client != nil && !s.m.unreachable {
			r.syncExportStatus(ctx, fed, s, conflicts)
		}
	}
	return svcs
}

// refuseInstall drops the member from service federation when its mesh, as
// its MeshInstall says it is installed, cannot be federated. A member
// without a MeshInstall (or without the kind) is taken as the provider's
// default install.
func (r *Reconciler) refuseInstall(ctx context.Context, s *svcMember) {
	installs, ok := s.meshInstalls(ctx)
	if !ok {
		return
	}
	for i := range installs {
		mi := &installs[i]
		if mi.Spec.Provider != s.m.spec.Provider {
			continue
		}
		if why := s.sf.FederationRefusal(mesh.InstallFactsOf(mi.Spec.Provider, mi, false)); why != "" {
			s.sf, s.notFederating = nil, why
			return
		}
	}
	s.fm.Profile = memberProfile(s.m.spec.Provider, installs)
}

// endpoint sets how peers reach the member's API server: spec.apiServer,
// or the server and CA of its kubeconfig (of the operator's own config for
// the local member).
func (r *Reconciler) endpoint(ctx context.Context, s *svcMember) {
	cfg := r.LocalConfig
	if ref := s.m.spec.KubeconfigSecretRef; ref != nil {
		sec, err := getSecret(ctx, r.Local, r.OperatorNamespace, ref.Name)
		if err != nil || sec == nil {
			return
		}
		data, err := remote.KubeconfigData(sec, ref.Key)
		if err != nil {
			return
		}
		if cfg, err = remote.RESTConfig(sec.Namespace+"/"+sec.Name, data, 0); err != nil {
			return
		}
	}
	if cfg == nil {
		return
	}
	s.server, s.caData = cfg.Host, cfg.CAData
	if len(s.caData) == 0 && cfg.CAFile != "" {
		s.caData, _ = os.ReadFile(cfg.CAFile)
	}
	if s.m.spec.APIServer != "" {
		s.server = s.m.spec.APIServer
		return
	}
	// The operator's in-cluster address (the kubernetes Service) is not
	// reachable from other clusters.
	if host := os.Getenv("KUBERNETES_SERVICE_HOST"); s.m.spec.KubeconfigSecretRef == nil && host != "" && strings.Contains(cfg.Host, host) {
		s.server, s.serverWhy = "", fmt.Sprintf("the API server address of %s is the in-cluster address %s, which other clusters cannot reach; set spec.clusters[%s].apiServer",
			s.m.spec.Name, cfg.Host, s.m.spec.Name)
	}
}

// readerToken requests a token of the member's reader ServiceAccount
// (created by an earlier apply), once per reconcile and only when a peer
// needs a new credential: a no-op reconcile requests none.
func (r *Reconciler) readerToken(ctx context.Context, s *svcMember) {
	if s.token != "" || s.tokenErr != "" {
		return
	}
	rd := s.sf.FederationReader(s.fm)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: rd.Namespace, Name: rd.ServiceAccount}}
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(TokenLifetime / time.Second))}}
	if err := s.m.client.SubResource("token").Create(ctx, sa, tr); err != nil {
		if apierrors.IsNotFound(err) {
			s.tokenErr = fmt.Sprintf("waiting for the reader ServiceAccount %s/%s in cluster %s", rd.Namespace, rd.ServiceAccount, s.m.spec.Name)
		} else {
			s.tokenErr = fmt.Sprintf("cluster %s: requesting a token of ServiceAccount %s/%s: %v", s.m.spec.Name, rd.Namespace, rd.ServiceAccount, err)
		}
		return
	}
	s.token = tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

// peerCredentials returns the credentials member s holds for its peers and
// records each pair's status. A credential still valid for the peer's
// current endpoint is kept as it is (no token is requested for it); a
// peer that does not answer keeps the credential s already holds.
func (r *Reconciler) peerCredentials(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, all []*svcMember, now time.Time) []client.Object {
	if s.fm.Primary != "" {
		// A remote runs no control plane: it reads no peer; its one peer
		// entry names the primary that controls it.
		s.peers = append(s.peers, meshv1alpha1.PeerStatus{Name: s.fm.Primary, Primary: true, Linked: s.remoteWhy == "", Message: s.remoteWhy})
		return nil
	}
	var out []client.Object
	for _, p := range all {
		if p == s {
			continue
		}
		ps := meshv1alpha1.PeerStatus{Name: p.m.spec.Name}
		if p.sf == nil || p.m.spec.Provider != s.m.spec.Provider || pairRefusal(s, p) != "" {
			if s.unlinkable == nil {
				s.unlinkable = map[string]bool{}
			}
			s.unlinkable[p.m.spec.Name] = true
		}
		if clusterMeshPair(s, p, &ps) {
			s.peers = append(s.peers, ps)
			continue
		}
		kc, why := r.credentialFor(ctx, fed, s, p, now)
		if kc != nil {
			out = append(out, s.sf.PeerCredential(s.fm, p.fm, kc))
		}
		links, why := r.peerLinks(ctx, fed, s, p, kc, why)
		out = append(out, links...)
		ps.Linked, ps.Message = why == "", why
		s.peers = append(s.peers, ps)
	}
	return out
}

// credentialFor returns the kubeconfig s holds for p, and why the pair is
// not linked (empty when it is).
func (r *Reconciler) credentialFor(ctx context.Context, fed *meshv1alpha1.MeshFederation, s, p *svcMember, now time.Time) ([]byte, string) {
	switch {
	case p.m.spec.Provider != s.m.spec.Provider:
		return nil, mixedPair(s, p)
	case p.sf == nil:
		return nil, fmt.Sprintf("%s: %s", p.m.spec.Name, p.notFederating)
	}
	if why := pairRefusal(s, p); why != "" {
		return nil, why
	}
	held := heldCredential(ctx, fed, s, p)
	if p.m.client == nil || p.m.unreachable {
		if held != nil {
			return held, fmt.Sprintf("%s does not answer; %s keeps the credentials it holds", p.m.spec.Name, s.m.spec.Name)
		}
		return nil, fmt.Sprintf("%s does not answer", p.m.spec.Name)
	}
	if p.server == "" {
		if p.serverWhy != "" {
			return held, p.serverWhy
		}
		return held, fmt.Sprintf("the API server address of %s is unknown; set its apiServer", p.m.spec.Name)
	}
	if held != nil && credentialValid(held, p, now) {
		return held, ""
	}
	if r.readerToken(ctx, p); p.token == "" {
		return held, p.tokenErr
	}
	kc, err := kubeconfigFor(p)
	if err != nil {
		return held, err.Error()
	}
	return kc, ""
}

// heldCredential reads the kubeconfig s holds for p, if the federation
// wrote it.
func heldCredential(ctx context.Context, fed *meshv1alpha1.MeshFederation, s, p *svcMember) []byte {
	ns, name, key := s.sf.PeerCredentialKey(s.fm, p.fm)
	sec, err := getSecret(ctx, s.m.client, ns, name)
	if err != nil || !owned(sec, fed.Name) {
		return nil
	}
	return sec.Data[key]
}

// kubeconfigFor renders the kubeconfig of p's reader.
func kubeconfigFor(p *svcMember) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	name := p.m.spec.Name
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: p.server, CertificateAuthorityData: p.caData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: p.token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	return clientcmd.Write(*kc)
}

// credentialValid reports whether a held kubeconfig still points at p's
// endpoint with p's CA and a token of p's reader that is not due for
// renewal.
func credentialValid(data []byte, p *svcMember, now time.Time) bool {
	rc, err := remote.RESTConfig("held", data, 0)
	if err != nil || rc.Host != p.server || string(rc.CAData) != string(p.caData) {
		return false
	}
	rd := p.sf.FederationReader(p.fm)
	sub, exp, ok := tokenClaims(rc)
	return ok && sub == "system:serviceaccount:"+rd.Namespace+":"+rd.ServiceAccount && exp.Sub(now) > TokenRenewBefore
}

// tokenClaims reads the subject and expiry of the config's bearer token
// (not verified: the API server does that; this only decides renewal).
func tokenClaims(rc *rest.Config) (string, time.Time, bool) {
	parts := strings.Split(rc.BearerToken, ".")
	if len(parts) != 3 {
		return "", time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", time.Time{}, false
	}
	var c struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == 0 {
		return "", time.Time{}, false
	}
	return c.Sub, time.Unix(c.Exp, 0), true
}

// applyServices writes the member's reader, outputs, namespace labels and
// peer credentials in one apply that prunes the rest of its inventory.
// The fields set on the control-plane namespace are recorded (with their
// previous values) in status before they are written.
func (r *Reconciler) applyServices(ctx context.Context, fed *meshv1alpha1.MeshFederation, s *svcMember, creds []client.Object, patcher *status.Patcher) error {
	rd := s.sf.FederationReader(s.fm)
	objs := append([]client.Object{}, rd.Objects...)
	objs = append(objs, s.sf.FederationOutputs(s.fm)...)
	if labels := s.sf.FederationNamespaceLabels(s.fm); len(labels) > 0 {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rd.Namespace, Labels: labels}})
	}
	objs = append(objs, creds...)
	return r.applyMember(ctx, fed, s, objs, patcher)
}

func (r *Reconciler) servicesErr(s *svcMember, err error) error {
	if remote.IsUnreachable(err) && !errors.As(err, new(*apply.ConflictError)) {
		return fmt.Errorf("cluster %s: %w", s.m.spec.Name, err)
	}
	return r.applyErr(s.m, err)
}

// gatewayAddress reads the address of the member's east-west gateway.
func (r *Reconciler) gatewayAddress(ctx context.Context, s *svcMember) string {
	ns, name, ok := s.sf.FederationGateway(s.fm)
	s.gatewayWanted = ok
	if !ok {
		return ""
	}
	svc := &corev1.Service{}
	if err := s.m.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		return ""
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			return in.IP
		}
		if in.Hostname != "" {
			return in.Hostname
		}
	}
	return ""
}

// releaseServices removes what service federation wrote into each
// reachable member (spec.services removed, or the federation deleted) and
// reports whether every member is clean.
func (r *Reconciler) releaseServices(ctx context.Context, fed *meshv1alpha1.MeshFederation, members []*member) bool {
	clean := true
	for _, m := range members {
		clean = r.releaseMember(ctx, fed, m) && clean
	}
	if clean {
		controllerutil.RemoveFinalizer(fed, ServicesFinalizer)
	}
	return clean
}

// releaseMember removes what service federation wrote into one member and
// restores the fields it set; false when the member holds objects and
// cannot be cleaned now.
func (r *Reconciler) releaseMember(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member) bool {
	if !r.releaseClusterMesh(ctx, fed, m) {
		return false
	}
	prev := memberServices(fed, m.spec.Name)
	if len(prev.Inventory) == 0 && fed.Spec.Services != nil && fed.DeletionTimestamp.IsZero() {
		// A member that does not federate services: this reconcile sets its
		// ServicesConnected again, so removing it here would move its
		// lastTransitionTime (a status write on a no-op).
		for i := range fed.Status.Clusters {
			if fed.Status.Clusters[i].Name == m.spec.Name {
				fed.Status.Clusters[i].Services = nil
			}
		}
		return true
	}
	if len(prev.Inventory) == 0 {
		clearMemberServices(fed, m.spec.Name)
		return true
	}
	if m.client == nil || m.unreachable {
		return false
	}
	if err := r.releaseRecord(ctx, fed, m, prev); err != nil {
		return false
	}
	clearMemberServices(fed, m.spec.Name)
	return true
}

// finalizeServices releases every member on deletion; the finalizer stays
// (and the deletion waits) while a member that holds objects does not
// answer.
func (r *Reconciler) finalizeServices(ctx context.Context, fed *meshv1alpha1.MeshFederation) error {
	if !controllerutil.ContainsFinalizer(fed, ServicesFinalizer) {
		return nil
	}
	members, err := r.members(ctx, fed)
	if err != nil {
		return err
	}
	if !r.releaseServices(ctx, fed, members) {
		return fmt.Errorf("removing what service federation wrote: a member holding its objects does not answer")
	}
	return nil
}

// memberServices returns the recorded services status of a member.
func memberServices(fed *meshv1alpha1.MeshFederation, name string) meshv1alpha1.MemberServicesStatus {
	for _, c := range fed.Status.Clusters {
		if c.Name == name && c.Services != nil {
			return *c.Services
		}
	}
	return meshv1alpha1.MemberServicesStatus{}
}

// setMemberServices returns the member's services status to fill in,
// adding the member to status when it is not there yet.
func setMemberServices(fed *meshv1alpha1.MeshFederation, name string) *meshv1alpha1.MemberServicesStatus {
	for i := range fed.Status.Clusters {
		if c := &fed.Status.Clusters[i]; c.Name == name {
			if c.Services == nil {
				c.Services = &meshv1alpha1.MemberServicesStatus{}
			}
			return c.Services
		}
	}
	fed.Status.Clusters = append(fed.Status.Clusters, meshv1alpha1.MemberClusterStatus{Name: name, Services: &meshv1alpha1.MemberServicesStatus{}})
	return fed.Status.Clusters[len(fed.Status.Clusters)-1].Services
}

func clearMemberServices(fed *meshv1alpha1.MeshFederation, name string) {
	for i := range fed.Status.Clusters {
		if fed.Status.Clusters[i].Name == name {
			fed.Status.Clusters[i].Services = nil
			apimeta.RemoveStatusCondition(&fed.Status.Clusters[i].Conditions, meshv1alpha1.ServicesConnectedCondition)
		}
	}
}

// linkPeers names the other members of s's mesh that federate services:
// the peers an extension installed by a MeshInstall runs a link for.
func linkPeers(s *svcMember, all []*svcMember) []string {
	var out []string
	for _, p := range all {
		if p != s && p.sf != nil && p.m.spec.Provider == s.m.spec.Provider {
			out = append(out, p.m.spec.Name)
		}
	}
	return out
}

// meshInstalls lists the member's MeshInstalls, once per reconcile: the
// refusal check, the install that holds the federation's settings and the
// export scope all read them; false when they cannot be listed.
func (s *svcMember) meshInstalls(ctx context.Context) ([]meshv1alpha1.MeshInstall, bool) {
	if !s.installsRead {
		var list meshv1alpha1.MeshInstallList
		s.installsErr = s.m.client.List(ctx, &list)
		s.installs, s.installsRead = list.Items, true
	}
	return s.installs, s.installsErr == nil
}
