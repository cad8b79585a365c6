package e2e

import (
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/trust"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestServiceFederationCilium federates two simulated clusters, each with
// Cilium installed by its own Meshplane from the real chart: the
// MeshFederation in west gives each member's MeshInstall its ClusterMesh
// settings (a unique cluster.name and cluster.id, the clustermesh-apiserver
// and the peer's endpoint); the clustermesh-apiserver Deployment the chart
// then renders rolls out on kwok's nodes (the test plays the load
// balancer). The federation issues each member's clustermesh-apiserver
// certificates from the member's intermediate of its root (the chart's
// TLS generation is off; its cilium-ca stays Hubble's), so trust is
// Distributed while ServicesConnected, and each member's remote client
// certificate verifies against the other's server ca.crt and back
// (crypto/x509, as etcd and KVStoreMesh check them). A ServiceExport'ed
// Service is annotated service.cilium.io/global and shared; a BreakGlass
// in east leaves west alone; deleting the federation removes the settings
// (the clustermesh-apiserver with them), restores the Services'
// annotations and keeps Cilium.
func TestServiceFederationCilium(t *testing.T) {
	parallel(t)
	start := time.Now()
	dir := t.TempDir()
	charts.Stage(t, dir, charts.Chart{Name: charts.Cilium, Version: "1.19.5", Unpacked: true})
	// Cilium's operator creates its CRDs at run time; nothing runs it here.
	p := startFedPair(t, cluster.SimulatedOptions{Nodes: 1, CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Cilium, cluster.MCS}}})
	wc := p.clients["west"]
	for _, c := range p.clients {
		if err := c.Create(ctx, &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
				Chart:  &meshv1alpha1.ChartSource{Path: dir},
				Values: &apiextensionsv1.JSON{Raw: []byte(`{"k8sServiceHost":"127.0.0.1","k8sServicePort":6443}`)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range p.clients {
		waitMI(t, c, "cilium", 3*time.Minute, name+" Cilium Ready", ready)
	}
	t.Logf("both Cilium installs Ready after %s", time.Since(start).Round(10*time.Millisecond))

	fedStart := time.Now()
	if err := wc.Create(ctx, p.federation(meshv1alpha1.ProviderCilium)); err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{"west": "127.96.4.1", "east": "127.96.4.2"}
	ids := map[string]int32{"west": 1, "east": 2}
	for name, c := range p.clients {
		waitMI(t, c, "cilium", 60*time.Second, name+" ClusterMesh settings", func(mi *meshv1alpha1.MeshInstall) bool {
			return ready(mi) && mi.Spec.Cilium != nil && mi.Spec.Cilium.ClusterMesh != nil
		})
		deployAvailable(t, c, "kube-system", "clustermesh-apiserver", 30*time.Second)
		setIngress(t, c, "kube-system", "clustermesh-apiserver", ips[name])
	}
	// Remote members are not watched: a change in the operator namespace
	// wakes the federation.
	if err := wc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "poke-apiserver"}}); err != nil {
		t.Fatal(err)
	}
	p.waitConnected(t, 60*time.Second)
	harness.Eventually(t, 30*time.Second, "Distributed with ServicesConnected", func() error {
		f := &meshv1alpha1.MeshFederation{}
		if err := wc.Get(ctx, client.ObjectKey{Name: "mesh"}, f); err != nil {
			return err
		}
		for _, typ := range []string{meshv1alpha1.DistributedCondition, meshv1alpha1.ServicesConnectedCondition} {
			if c := apimeta.FindStatusCondition(f.Status.Conditions, typ); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != f.Generation {
				return harness.Errorf("%s %+v", typ, c)
			}
		}
		return nil
	})
	for name := range p.clients {
		if err := clusterMeshTLSVerifies(p.clients[name], p.clients[peerOf[name]], name, peerOf[name]); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range p.clients {
		peer := peerOf[name]
		mi := waitMI(t, c, "cilium", 60*time.Second, name+" peers exchanged", func(mi *meshv1alpha1.MeshInstall) bool {
			cm := mi.Spec.Cilium.ClusterMesh
			return ready(mi) && len(cm.Peers) == 1
		})
		cm := mi.Spec.Cilium.ClusterMesh
		if cm.ClusterName != name || cm.ClusterID != ids[name] || cm.Peers[0].Name != peer || len(cm.Peers[0].IPs) != 1 ||
			cm.Peers[0].IPs[0] != ips[peer] || cm.Peers[0].Port != 2379 {
			t.Fatalf("%s: spec.cilium.clusterMesh %+v", name, cm)
		}
		cfg := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "cilium-config"}, cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Data["cluster-name"] != name || cfg.Data["cluster-id"] != map[string]string{"west": "1", "east": "2"}[name] {
			t.Fatalf("%s: cilium-config cluster-name %q cluster-id %q", name, cfg.Data["cluster-name"], cfg.Data["cluster-id"])
		}
	}
	t.Logf("Cilium ClusterMesh connected %s after the federation's creation", time.Since(fedStart).Round(10*time.Millisecond))

	before := p.exportRatings(t, nil, nil)
	want := map[string]string{
		"east": "labels map[app:ratings] annotations map[service.cilium.io/affinity:none service.cilium.io/global:true service.cilium.io/shared:true team:shop]",
		"west": "labels map[app:ratings] annotations map[service.cilium.io/affinity:none service.cilium.io/global:true service.cilium.io/shared:false team:shop]",
	}
	for name, c := range p.clients {
		harness.Eventually(t, 30*time.Second, name+"'s ratings global", func() error {
			if got := serviceMarks(t, c); got != want[name] {
				return harness.Errorf("%s's ratings: %s", name, got)
			}
			return nil
		})
	}

	for _, c := range p.clients {
		if err := c.Create(ctx, denyAll()); err != nil {
			t.Fatal(err)
		}
	}
	objs := func() []client.Object {
		return []client.Object{
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ratings"}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "clustermesh-apiserver"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "meshplane-clustermesh-ca"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "clustermesh-apiserver-server-cert"}},
			denyAll(),
		}
	}
	p.breakGlassLeavesPeer(t, meshv1alpha1.ProviderCilium, denyAll(), objs, func() []client.Object { return objs()[:4] })

	delStart := time.Now()
	p.deleteFederation(t)
	for name, c := range p.clients {
		harness.Eventually(t, 60*time.Second, name+": ClusterMesh settings removed, Cilium kept", func() error {
			mi, err := getMI(c, "cilium")
			if err != nil {
				return err
			}
			if mi.Spec.Cilium != nil && mi.Spec.Cilium.ClusterMesh != nil {
				return harness.Errorf("spec.cilium.clusterMesh %+v", mi.Spec.Cilium.ClusterMesh)
			}
			if !ready(mi) {
				return harness.Errorf("%s", describe(mi))
			}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "clustermesh-apiserver"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
				return harness.Errorf("clustermesh-apiserver Deployment: %v", err)
			}
			for _, s := range []string{"server", "admin", "local", "remote"} {
				if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "clustermesh-apiserver-" + s + "-cert"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
					return harness.Errorf("clustermesh-apiserver-%s-cert: %v", s, err)
				}
			}
			return nil
		})
		if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "cilium"}, &appsv1.DaemonSet{}); err != nil {
			t.Fatalf("%s: Cilium's agent after the federation's deletion: %v", name, err)
		}
		if got := serviceMarks(t, c); got != before[name] {
			t.Fatalf("%s's ratings after the federation's deletion: %s, was %s", name, got, before[name])
		}
	}
	t.Logf("federation deleted and cleaned up in %s", time.Since(delStart).Round(10*time.Millisecond))
	// The federation's part is bounded; the clusters' start and the two
	// Cilium installs depend on the machine's load and are only logged.
	if elapsed := time.Since(fedStart); elapsed > 90*time.Second {
		t.Fatalf("the federation's part took %s, over the 90 s bound", elapsed)
	}
	t.Logf("two-cluster Cilium service federation end to end in %s", time.Since(start).Round(10*time.Millisecond))
}

// clusterMeshTLSVerifies checks ClusterMesh TLS from member a to member b
// as KVStoreMesh and etcd run it: a's remote client certificate (chain in
// tls.crt) verifies against b's server ca.crt for client auth, and b's
// server certificate, reached as <b>.mesh.cilium.io, against the ca.crt a's
// remote certificate Secret carries, for server auth.
func clusterMeshTLSVerifies(ac, bc client.Client, a, b string) error {
	read := func(c client.Client, name string) (*x509.Certificate, *x509.CertPool, *x509.CertPool, error) {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: name}, s); err != nil {
			return nil, nil, nil, err
		}
		chain, err := trust.ParseCerts(s.Data["tls.crt"])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s tls.crt: %w", name, err)
		}
		roots, err := trust.ParseCerts(s.Data["ca.crt"])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s ca.crt: %w", name, err)
		}
		in, rp := x509.NewCertPool(), x509.NewCertPool()
		for _, c := range chain[1:] {
			in.AddCert(c)
		}
		for _, c := range roots {
			rp.AddCert(c)
		}
		return chain[0], in, rp, nil
	}
	remote, remoteChain, remoteRoots, err := read(ac, "clustermesh-apiserver-remote-cert")
	if err != nil {
		return fmt.Errorf("%s: %w", a, err)
	}
	server, serverChain, serverRoots, err := read(bc, "clustermesh-apiserver-server-cert")
	if err != nil {
		return fmt.Errorf("%s: %w", b, err)
	}
	if remote.Subject.CommonName != "remote-"+a {
		return fmt.Errorf("%s's remote certificate has CN %q", a, remote.Subject.CommonName)
	}
	if _, err := remote.Verify(x509.VerifyOptions{Roots: serverRoots, Intermediates: remoteChain, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("%s's remote certificate against %s's server ca.crt: %w", a, b, err)
	}
	if _, err := server.Verify(x509.VerifyOptions{DNSName: b + ".mesh.cilium.io", Roots: remoteRoots, Intermediates: serverChain,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("%s's server certificate against %s's ca.crt: %w", b, a, err)
	}
	return nil
}

// denyAll is a CiliumNetworkPolicy in shop that denies all ingress.
func denyAll() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "shop", "name": "deny-all"},
		"spec":     map[string]any{"endpointSelector": map[string]any{}, "ingress": []any{map[string]any{}}},
	}}
	return u
}
