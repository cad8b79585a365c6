package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	linkv1alpha3 "github.com/linkerd/linkerd2/controller/gen/apis/link/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestServiceFederationLinkerd federates two simulated clusters, each with
// Linkerd installed by its own Meshplane from the real charts, its identity
// taken from the federation (identity.external): the MeshFederation in west
// distributes one root, installs the linkerd-multicluster extension
// through each member's MeshInstall (its gateway rolls out on kwok's
// nodes; the test plays the load balancer), then writes into each member a
// Link naming the other with its credentials Secrets. The credential reads
// what the peer's service mirror needs and nothing more; a ServiceExport'ed
// Service is marked mirror.linkerd.io/exported on the exporter; a
// BreakGlass in east leaves west and the links alone; deleting the
// federation removes the links and the extension, restores the Service's
// labels and keeps both Linkerd control planes.
func TestServiceFederationLinkerd(t *testing.T) {
	parallel(t)
	start := time.Now()
	dir := t.TempDir()
	charts.StageLinkerd(t, dir, "2026.1.1")
	charts.Stage(t, dir, charts.Chart{Name: charts.LinkerdMulticluster, Version: "2026.1.1"})
	p := startFedPair(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.MCS}}})
	wc, ec := p.clients["west"], p.clients["east"]
	// Both control planes take their identity from the federation
	// (identity.external), which the federation in west writes into each
	// control-plane namespace, created first (as for any external CA).
	for _, c := range p.clients {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
				Chart:   &meshv1alpha1.ChartSource{Path: dir},
				Linkerd: &meshv1alpha1.LinkerdInstallSpec{Identity: &meshv1alpha1.LinkerdIdentity{External: ptr.To(true)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	fedStart := time.Now()
	if err := wc.Create(ctx, p.federation(meshv1alpha1.ProviderLinkerd)); err != nil {
		t.Fatal(err)
	}
	for name, c := range p.clients {
		waitMI(t, c, "linkerd", 3*time.Minute, name+" Linkerd Ready", ready)
	}
	t.Logf("both Linkerd installs Ready, with the federation's trust, after %s", time.Since(start).Round(10*time.Millisecond))
	// The federation's own part (extension, links, export, BreakGlass,
	// rotation, deletion) is bounded; the clusters' start and the
	// installs depend on the machine's load and are only logged.
	linkStart := time.Now()

	// The extension is installed through each member's MeshInstall, its
	// gateway listing the peer's Link.
	ips := map[string]string{"west": "127.96.3.1", "east": "127.96.3.2"}
	for name, c := range p.clients {
		mi := waitMI(t, c, "linkerd", 2*time.Minute, name+" extension installed", func(mi *meshv1alpha1.MeshInstall) bool {
			if !ready(mi) || mi.Spec.Linkerd == nil || mi.Spec.Linkerd.Multicluster == nil {
				return false
			}
			return slices.ContainsFunc(mi.Status.Releases, func(r meshv1alpha1.HelmReleaseStatus) bool { return r.Name == "linkerd-multicluster" })
		})
		if mc := mi.Spec.Linkerd.Multicluster; mc.Gateway == nil || !*mc.Gateway || !slices.Equal(mc.Links, []string{peerOf[name]}) {
			t.Fatalf("%s: spec.linkerd.multicluster %+v", name, mc)
		}
		deployAvailable(t, c, "linkerd-multicluster", "linkerd-gateway", 30*time.Second)
		setIngress(t, c, "linkerd-multicluster", "linkerd-gateway", ips[name])
	}
	// Remote members are not watched: a change in the operator namespace
	// wakes the federation.
	if err := wc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "poke-gateway"}}); err != nil {
		t.Fatal(err)
	}
	p.waitConnected(t, 60*time.Second)
	p.waitReady(t, 30*time.Second)
	t.Logf("Linkerd federation connected %s after its creation", time.Since(fedStart).Round(10*time.Millisecond))

	for name, c := range p.clients {
		peer := peerOf[name]
		l := &linkv1alpha3.Link{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: peer}, l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l.Spec.TargetClusterName != peer || l.Spec.GatewayAddress != ips[peer] || l.Spec.GatewayPort != "4143" ||
			l.Spec.ClusterCredentialsSecret != "cluster-credentials-"+peer || l.Spec.GatewayIdentity == "" {
			t.Fatalf("%s: Link %+v", name, l.Spec)
		}
		dest := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "cluster-credentials-" + peer}, dest); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd-multicluster", Name: "cluster-credentials-" + peer}, s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Type != "mirror.linkerd.io/remote-kubeconfig" || string(dest.Data["kubeconfig"]) != string(s.Data["kubeconfig"]) {
			t.Fatalf("%s: credentials type %s, destination's differ: %t", name, s.Type, string(dest.Data["kubeconfig"]) != string(s.Data["kubeconfig"]))
		}
		linkCredentialIsMinimal(t, name, peer, s.Data["kubeconfig"])
	}

	before := p.exportRatings(t, nil, map[string]string{"linkerd.io/inject": "enabled"})
	harness.Eventually(t, 30*time.Second, "east's ratings exported", func() error {
		if got := serviceMarks(t, ec); got != "labels map[app:ratings mirror.linkerd.io/exported:true] annotations map[team:shop]" {
			return harness.Errorf("east's ratings: %s", got)
		}
		return nil
	})
	if got := serviceMarks(t, wc); got != before["west"] {
		t.Fatalf("west's ratings (not exported) changed: %s, was %s", got, before["west"])
	}

	linkObjs := func(name string) func() []client.Object {
		return func() []client.Object {
			peer := peerOf[name]
			return []client.Object{
				&linkv1alpha3.Link{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: peer}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "cluster-credentials-" + peer}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "cluster-credentials-" + peer}},
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings"}},
				&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "linkerd-gateway"}},
			}
		}
	}
	p.breakGlassLeavesPeer(t, meshv1alpha1.ProviderLinkerd, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, linkObjs("west"), linkObjs("east"))

	rotateWithLinks(t, p, linkObjs)

	delStart := time.Now()
	p.deleteFederation(t)
	for name, c := range p.clients {
		peer := peerOf[name]
		harness.Eventually(t, 60*time.Second, name+": extension uninstalled, Linkerd kept", func() error {
			mi, err := getMI(c, "linkerd")
			if err != nil {
				return err
			}
			if mi.Spec.Linkerd != nil && mi.Spec.Linkerd.Multicluster != nil {
				return harness.Errorf("spec.linkerd.multicluster %+v", mi.Spec.Linkerd.Multicluster)
			}
			if !ready(mi) || slices.ContainsFunc(mi.Status.Releases, func(r meshv1alpha1.HelmReleaseStatus) bool { return r.Name == "linkerd-multicluster" }) {
				return harness.Errorf("%s", describe(mi))
			}
			return nil
		})
		for _, o := range []client.Object{
			&linkv1alpha3.Link{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: peer}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "cluster-credentials-" + peer}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "cluster-credentials-" + peer}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-multicluster", Name: "linkerd-gateway"}},
		} {
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				t.Fatalf("%s: %T %s still there after the federation's deletion (%v)", name, o, client.ObjectKeyFromObject(o), err)
			}
		}
		for _, d := range []string{"linkerd-destination", "linkerd-identity", "linkerd-proxy-injector"} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: d}, &appsv1.Deployment{}); err != nil {
				t.Fatalf("%s: Linkerd's %s after the federation's deletion: %v", name, d, err)
			}
		}
		if got := serviceMarks(t, c); got != before[name] {
			t.Fatalf("%s's ratings after the federation's deletion: %s, was %s", name, got, before[name])
		}
	}
	t.Logf("federation deleted and cleaned up in %s", time.Since(delStart).Round(10*time.Millisecond))
	if elapsed := time.Since(linkStart); elapsed > 90*time.Second {
		t.Fatalf("the federation's part took %s, over the 90 s bound", elapsed)
	}
	t.Logf("two-cluster Linkerd service federation end to end in %s", time.Since(start).Round(10*time.Millisecond))
}

// linkCredentialIsMinimal reads the peer with the Link's credential as the
// service mirror does (Services, EndpointSlices, Pods, linkerd-config)
// and checks that a write or a Secret read is Forbidden.
func linkCredentialIsMinimal(t *testing.T, name, peer string, kubeconfig []byte) {
	t.Helper()
	rc, err := remote.RESTConfig(name+"/link-"+peer, kubeconfig, 0)
	if err != nil {
		t.Fatal(err)
	}
	reader := testenv.NewClient(t, rc)
	for _, l := range []client.ObjectList{&corev1.ServiceList{}, &discoveryv1.EndpointSliceList{}, &corev1.PodList{}} {
		if err := reader.List(ctx, l); err != nil {
			t.Fatalf("%s's credential for %s cannot list %T: %v", name, peer, l, err)
		}
	}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-config"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("%s's credential for %s cannot read linkerd-config: %v", name, peer, err)
	}
	for what, err := range map[string]error{
		"list Secrets":             reader.List(ctx, &corev1.SecretList{}, client.InNamespace("linkerd")),
		"read the identity issuer": reader.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-identity-issuer"}, &corev1.Secret{}),
		"create a Service":         reader.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "intruder"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}),
		"read another ConfigMap":   reader.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-root-ca.crt"}, &corev1.ConfigMap{}),
		"patch the linkerd-config": reader.Patch(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-config"}}, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`))),
	} {
		if !apierrors.IsForbidden(err) {
			t.Fatalf("%s's credential for %s may %s: %v", name, peer, what, err)
		}
	}
}

// rotateWithLinks rotates the federation's root with the Links in place.
// West's service mirror (played by the test: a selector-less Service and
// its Endpoints, as the mirror writes them, made into an EndpointSlice by
// the real mirroring controller) first marks a Service mirrored from east
// not ready, as it does while east's gateway fails its probe: the
// rotation holds in its first phase and says why. Once the mirror is ready
// the rotation completes, and neither Links nor credentials were
// rewritten.
func rotateWithLinks(t *testing.T, p *fedPair, linkObjs func(string) func() []client.Object) {
	t.Helper()
	start := time.Now()
	wc, ec := p.clients["west"], p.clients["east"]
	before := objectVersions(t, wc, linkObjs("west")()[:3]) + objectVersions(t, ec, linkObjs("east")()[:3])
	mirror := map[string]string{"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": "east"}
	if err := wc.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings-east", Labels: mirror},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}}); err != nil {
		t.Fatal(err)
	}
	// A documentation address: the API server refuses loopback ones.
	addr := []corev1.EndpointAddress{{IP: "192.0.2.10"}}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings-east", Labels: mirror}, //nolint:staticcheck // the service mirror writes Endpoints
		Subsets: []corev1.EndpointSubset{{NotReadyAddresses: addr, Ports: []corev1.EndpointPort{{Name: "http", Port: 4143}}}}} //nolint:staticcheck // as above
	if err := wc.Create(ctx, ep); err != nil {
		t.Fatal(err)
	}
	f := &meshv1alpha1.MeshFederation{}
	if err := wc.Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
		t.Fatal(err)
	}
	base := f.DeepCopy()
	f.Spec.Rotation = &meshv1alpha1.RotationSpec{Trigger: "r1", MinPhaseWait: &metav1.Duration{}, WaitForWorkloads: ptr.To(false)}
	if err := wc.Patch(ctx, f, client.MergeFrom(base)); err != nil { // no optimistic lock: the controller writes status meanwhile
		t.Fatal(err)
	}
	const why = "links between members not healthy: west → east: the service mirror marks the endpoints of shop/ratings-east not ready: east's gateway fails its probe"
	rotation := func() *meshv1alpha1.RotationStatus {
		f := &meshv1alpha1.MeshFederation{}
		if err := wc.Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			t.Fatal(err)
		}
		return f.Status.Rotation
	}
	harness.Eventually(t, 30*time.Second, "rotation holding on the link", func() error {
		if r := rotation(); r == nil || r.Trigger != "r1" || r.Phase != meshv1alpha1.RotationAddingRoot || !strings.Contains(r.Message, why) {
			return harness.Errorf("rotation %+v", r)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if r := rotation(); r.Phase != meshv1alpha1.RotationAddingRoot {
		t.Fatalf("the rotation left its phase with an unhealthy link: %+v", r)
	}
	ep.Subsets[0].Addresses, ep.Subsets[0].NotReadyAddresses = addr, nil
	if err := wc.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if err := wc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "poke-healthy"}}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 60*time.Second, "rotation completed", func() error {
		if r := rotation(); r == nil || r.Phase != meshv1alpha1.RotationCompleted {
			return harness.Errorf("rotation %+v", r)
		}
		return nil
	})
	p.waitReady(t, 30*time.Second)
	if after := objectVersions(t, wc, linkObjs("west")()[:3]) + objectVersions(t, ec, linkObjs("east")()[:3]); after != before {
		t.Fatalf("the rotation rewrote Links or credentials:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("root rotated with the links in place (held while a link was unhealthy) in %s", time.Since(start).Round(10*time.Millisecond))
}
