package providers

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
)

// clusterMeshInstall is a Cilium MeshInstall holding the ClusterMesh
// settings service federation writes for member east (id 2) with peers
// west (an IP) and north (a host name).
func clusterMeshInstall(t *testing.T) (*meshv1alpha1.MeshInstall, mesh.ClusterMesh) {
	t.Helper()
	sf, err := Registry().ServiceFederation(meshv1alpha1.ProviderCilium)
	if err != nil {
		t.Fatal(err)
	}
	cm, ok := sf.(mesh.ClusterMesh)
	if !ok {
		t.Fatal("Cilium does not connect through its install")
	}
	peers := []meshv1alpha1.CiliumClusterMeshPeer{
		{Name: "north", Address: "cm.north.example", Port: 2379},
		{Name: "west", IPs: []string{"127.96.5.1"}, Port: 32379},
	}
	spec := cm.ClusterMeshSpec(mesh.FederationMember{Name: "east"}, 2, peers)
	b, err := yaml.Marshal(map[string]any{"spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5"}}
	if err := yaml.Unmarshal(b, mi); err != nil {
		t.Fatal(err)
	}
	return mi, cm
}

// TestCiliumClusterMeshGolden pins the chart values of a MeshInstall's
// ClusterMesh settings, and the preflight answers: refusals (no cluster
// id, no Cilium MeshInstall, Istio ambient alongside, a name Cilium does
// not take) and the policy-default-local-cluster report by version and
// values.
func TestCiliumClusterMeshGolden(t *testing.T) {
	mi, cm := clusterMeshInstall(t)
	p, _ := Registry().Installer(meshv1alpha1.ProviderCilium)
	vals := p.Values(mi, mesh.Chart{Name: "cilium"}, mesh.InstallContext{})
	got, err := yaml.Marshal(map[string]any{"cluster": vals["cluster"], "clustermesh": vals["clustermesh"]})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "federation-clustermesh-values.cilium.golden.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
	}

	m := mesh.FederationMember{Name: "east"}
	cilium := meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5"}}
	ambient := meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Profile: meshv1alpha1.ProfileAmbient}}
	sidecar := meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio}}
	for _, c := range []struct {
		m        mesh.FederationMember
		id       int32
		installs []meshv1alpha1.MeshInstall
		want     string
	}{
		{m, 0, []meshv1alpha1.MeshInstall{cilium}, "spec.clusters[east].clusterID is not set"},
		{m, 2, nil, "cluster east has no MeshInstall of Cilium"},
		{m, 2, []meshv1alpha1.MeshInstall{cilium, ambient}, "cluster east also runs Istio ambient (MeshInstall istio): ztunnel's mTLS is not compatible with Cilium ClusterMesh"},
		{mesh.FederationMember{Name: strings.Repeat("a", 33)}, 2, []meshv1alpha1.MeshInstall{cilium}, "longer than 32 characters"},
		{m, 2, []meshv1alpha1.MeshInstall{sidecar, cilium}, ""},
	} {
		got, why := cm.ClusterMeshInstall(c.m, c.id, c.installs)
		if c.want == "" && (why != "" || got == nil || got.Name != "cilium") || c.want != "" && !strings.Contains(why, c.want) {
			t.Errorf("%s %d: %q, want %q", c.m.Name, c.id, why, c.want)
		}
	}
	for _, c := range []struct {
		version, values string
		cross           bool
		want            string
	}{
		{"1.19.5", "", false, "is true (the default of Cilium 1.19.5)"},
		{"1.18.3", "", true, "is false (the default of Cilium 1.18.3)"},
		{"v1.20.0", `{"clustermesh":{"policyDefaultLocalCluster":false}}`, true, "is false (set in spec.values)"},
		{"1.17.0", `{"clustermesh":{"policyDefaultLocalCluster":true}}`, false, "is true (set in spec.values)"},
	} {
		mi := cilium.DeepCopy()
		mi.Spec.Version = c.version
		if c.values != "" {
			mi.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(c.values)}
		}
		cross, msg := cm.CrossClusterPolicy(mi)
		if cross != c.cross || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s: %v %q, want %v %q", c.version, c.values, cross, msg, c.cross, c.want)
		}
	}
}

// TestCiliumClusterMeshChart renders the real Cilium chart with the
// values of a MeshInstall's ClusterMesh settings: the cilium-clustermesh
// Secret names every peer with its endpoint, and cluster.name and
// cluster.id reach the agent's configuration.
func TestCiliumClusterMeshChart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	mi, _ := clusterMeshInstall(t)
	p, _ := Registry().Installer(meshv1alpha1.ProviderCilium)
	vals := p.Values(mi, mesh.Chart{Name: "cilium"}, mesh.InstallContext{})
	vals["k8sServiceHost"], vals["k8sServicePort"] = "127.0.0.1", 6443
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true, SkipMeshplaneCRDs: true}})
	dir := t.TempDir()
	charts.StageCilium(t, dir, "1.19.5")
	repo := chartrepo.Serve(t, dir)
	e, err := helm.New(cfg, helm.Options{Logger: testr.New(t), Timeout: 30 * time.Second, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := e.Render(context.Background(), helm.Release{Name: "cilium", Namespace: "kube-system", Chart: "cilium", Version: "1.19.5",
		Source: helm.Source{RepoURL: repo.URL}, Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`cluster-name: "east"`, `cluster-id: "2"`, "name: clustermesh-apiserver\n", "name: cilium-clustermesh\n"} {
		if !strings.Contains(manifest, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	// Each peer's etcd configuration, base64 in the cilium-clustermesh
	// (and kvstoremesh) Secret.
	for peer, endpoint := range map[string]string{"west": "https://west.mesh.cilium.io:32379", "north": "https://cm.north.example:2379"} {
		found := false
		for _, m := range regexp.MustCompile(`(?m)^  `+peer+`: (\S+)$`).FindAllStringSubmatch(manifest, -1) {
			b, err := base64.StdEncoding.DecodeString(m[1])
			if err == nil && strings.Contains(string(b), endpoint) {
				found = true
			}
		}
		if !found {
			t.Errorf("no clustermesh configuration of %s with endpoint %s", peer, endpoint)
		}
	}
	if !strings.Contains(manifest, "127.96.5.1") {
		t.Errorf("west's IP is not in the agents' host aliases")
	}
	// The chart generates none of the ClusterMesh certificates (the
	// federation writes them) and mounts all four; etcd users are per
	// cluster (authMode cluster): west connects as remote-west.
	for _, name := range []string{"clustermesh-apiserver-server-cert", "clustermesh-apiserver-admin-cert", "clustermesh-apiserver-remote-cert", "clustermesh-apiserver-local-cert"} {
		if regexp.MustCompile(`kind: Secret\nmetadata:\n  name: ` + name + `\n`).MatchString(manifest) {
			t.Errorf("the chart renders Secret %s", name)
		}
		if !strings.Contains(manifest, "name: "+name+"\n") {
			t.Errorf("nothing mounts Secret %s", name)
		}
	}
	for _, want := range []string{"- name: remote-west\n      role: remote", "--cluster-users-enabled"} {
		if !strings.Contains(manifest, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
}

// TestCiliumFederationCertificates pins the names the clustermesh-apiserver's
// certificates carry (those of Cilium's tls-helm templates, authMode
// cluster) and that the member's remote identity may write exactly them.
func TestCiliumFederationCertificates(t *testing.T) {
	sf, _ := Registry().ServiceFederation(meshv1alpha1.ProviderCilium)
	fc, ok := sf.(mesh.FederationCertificates)
	if !ok {
		t.Fatal("Cilium does not issue federation certificates")
	}
	gw := &corev1.Service{Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "127.96.5.1"}, {Hostname: "cm.east.example"}}}}}
	certs := fc.FederationCertificates(mesh.FederationMember{Name: "east", Namespace: "cilium-system"}, gw)
	got := map[string]string{}
	for _, c := range certs {
		if c.Namespace != "cilium-system" {
			t.Errorf("%s in namespace %s", c.Secret, c.Namespace)
		}
		got[c.Secret] = fmt.Sprintf("CN=%s DNS=%v IP=%v usages=%v", c.CommonName, c.DNSNames, c.IPAddresses, c.Usages)
	}
	want := map[string]string{
		"clustermesh-apiserver-server-cert": "CN=clustermesh-apiserver.cilium.io DNS=[clustermesh-apiserver.cilium.io *.mesh.cilium.io clustermesh-apiserver.cilium-system.svc cm.east.example] IP=[127.0.0.1 ::1] usages=[serverAuth clientAuth]",
		"clustermesh-apiserver-admin-cert":  "CN=admin-east DNS=[] IP=[] usages=[clientAuth]",
		"clustermesh-apiserver-local-cert":  "CN=local-east DNS=[] IP=[] usages=[clientAuth]",
		"clustermesh-apiserver-remote-cert": "CN=remote-east DNS=[] IP=[] usages=[clientAuth]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("certificates\n got %v\nwant %v", got, want)
	}
	namespaced, _ := sf.FederationWriterRules(mesh.FederationMember{Name: "east"}, nil)
	var named []string
	for _, r := range namespaced {
		if slices.Contains(r.Resources, "secrets") && len(r.ResourceNames) > 0 {
			named = append(named, r.ResourceNames...)
			if !slices.Equal(r.Verbs, []string{"get", "patch", "delete"}) {
				t.Errorf("secret verbs %v", r.Verbs)
			}
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, []string{"clustermesh-apiserver-admin-cert", "clustermesh-apiserver-local-cert", "clustermesh-apiserver-remote-cert", "clustermesh-apiserver-server-cert"}) {
		t.Fatalf("writer rules name secrets %v", named)
	}
}
