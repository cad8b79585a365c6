package meshfederation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// markEnv is the fixture of exports that mark the user's Service: three
// members of one mesh (Linkerd or Cilium) over real API servers with the
// mesh's and the Multi-Cluster Services CRDs; east and west are reached
// through kubeconfigs bound to RemoteRBAC, RemoteServicesRBAC and
// RemoteExportRBAC only.
type markEnv struct {
	localCfg *cluster.Server
	members  map[string]client.Client
}

func (e *markEnv) local() client.Client { return e.members["local"] }

func setupMarks(t *testing.T, p meshv1alpha1.Provider, gateway bool) *markEnv {
	crds := map[meshv1alpha1.Provider]cluster.CRDSet{meshv1alpha1.ProviderLinkerd: cluster.Linkerd, meshv1alpha1.ProviderCilium: cluster.Cilium}[p]
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{ThirdParty: []cluster.CRDSet{crds, cluster.MCS}}})
	reg := providers.Registry()
	tw, _ := reg.FederationTrust(p)
	sf, _ := reg.ServiceFederation(p)
	se, _ := reg.ServiceExporter(p)
	e := &markEnv{localCfg: multi.Servers[0], members: map[string]client.Client{}}
	names := []string{"local", "east", "west"}
	for i, name := range names {
		c := testenv.NewClient(t, multi.Servers[i].Config)
		e.members[name] = c
		mustCreate(t, c, ns("shop"))
		if p == meshv1alpha1.ProviderLinkerd {
			mustCreate(t, c, ns("linkerd"), ns("linkerd-multicluster"), linkerdGateway())
			continue
		}
		mustCreate(t, c, ciliumInstall(""), clusterMeshAPIServer())
		svc := clusterMeshAPIServer()
		testenv.Eventually(t, 10*time.Second, "clustermesh-apiserver address", func() error {
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(svc), svc); err != nil {
				return err
			}
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: fmt.Sprintf("127.96.5.%d", i+1)}}
			return c.Status().Update(context.Background(), svc)
		})
	}
	mustCreate(t, e.local(), ns(opNS))
	for i, name := range names[1:] {
		proxy := newProxy(t, hostPort(t, multi.Servers[i+1].Config))
		kc := remoteKubeconfig(t, multi.Servers[i+1].Config, tw, proxy.addr)
		var peers []string
		for _, n := range names {
			if n != name {
				peers = append(peers, n)
			}
		}
		mustCreate(t, e.members[name], meshfederation.RemoteServicesRBAC(sf, mesh.FederationMember{Name: name, EastWestGateway: gateway}, peers,
			"meshplane-remote", "meshplane-federation")...)
		mustCreate(t, e.members[name], meshfederation.RemoteExportRBAC(se, "meshplane-remote", "meshplane-federation")...)
		mustCreate(t, e.local(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: name + "-kubeconfig"}, Data: map[string][]byte{"kubeconfig": kc}})
	}
	startFederationManager(t, multi.Servers[0].Config)
	return e
}

// marksFederation federates the three members of mesh p.
func marksFederation(p meshv1alpha1.Provider, gateway bool) *meshv1alpha1.MeshFederation {
	f := federation("mesh")
	for i := range f.Spec.Clusters {
		f.Spec.Clusters[i].Provider = p
		if p == meshv1alpha1.ProviderCilium {
			f.Spec.Clusters[i].ClusterID = int32(i + 1)
		}
	}
	f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{EastWestGateway: &gateway}
	return f
}

// cartService is shop/cart with the given labels and annotations, set by
// an imperative create (not server-side apply): Meshplane may take them
// over, recording their values.
func cartService(labels, annotations map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart", Labels: labels, Annotations: annotations},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}}
}

// serviceMeta returns the labels and annotations of shop/cart in c.
func serviceMeta(t *testing.T, c client.Client) (map[string]string, map[string]string) {
	t.Helper()
	svc := &corev1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "cart"}, svc); err != nil {
		t.Fatal(err)
	}
	return svc.Labels, svc.Annotations
}

// wantMeta compares a map with the wanted entries, absent ones "" (a key
// mapped to "-" must be absent).
func wantMeta(got map[string]string, want map[string]string) error {
	for k, v := range want {
		g, ok := got[k]
		if v == "-" && ok {
			return fmt.Errorf("%s is %q, want absent", k, g)
		}
		if v != "-" && g != v {
			return fmt.Errorf("%s is %q (set %v), want %q", k, g, ok, v)
		}
	}
	return nil
}

func (e *markEnv) fed(t *testing.T) *meshv1alpha1.MeshFederation {
	t.Helper()
	f := &meshv1alpha1.MeshFederation{}
	if err := e.local().Get(context.Background(), client.ObjectKey{Name: "mesh"}, f); err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *markEnv) poke(t *testing.T, name string) {
	t.Helper()
	mustCreate(t, e.local(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: name}})
}

func (e *markEnv) setFailover(t *testing.T, f meshv1alpha1.ExportFailover) {
	t.Helper()
	fed := e.fed(t)
	base := fed.DeepCopy()
	fed.Spec.Services.Failover = f
	if err := e.local().Patch(context.Background(), fed, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}

// noopWrites reconciles three times with counting clients and returns the
// writes sent.
func (e *markEnv) noopWrites(t *testing.T) []string {
	t.Helper()
	// Settled first: every pair linked, the status at the generation.
	testenv.Eventually(t, 30*time.Second, "links settled", func() error {
		f := e.fed(t)
		for _, m := range []string{"local", "east", "west"} {
			for _, p := range []string{"local", "east", "west"} {
				if p != m && !peer(memberSvc(f, m), p).Linked {
					return testenv.Errorf("%s -> %s not linked: %+v", m, p, peer(memberSvc(f, m), p))
				}
			}
		}
		if f.Status.ObservedGeneration != f.Generation {
			return testenv.Errorf("observedGeneration %d of %d", f.Status.ObservedGeneration, f.Generation)
		}
		return nil
	})
	var remotes []*testenv.Writes
	wrap := func(c client.Client) client.Client {
		wc, w := testenv.CountWrites(noWatch{c})
		remotes = append(remotes, w)
		return wc
	}
	local, err := client.NewWithWatch(e.localCfg.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	cl, writes := testenv.CountWrites(local)
	r := &meshfederation.Reconciler{Client: cl, Local: cl, LocalConfig: e.localCfg.Config, Registry: providers.Registry(),
		Remote: &remote.Cache{Scheme: scheme.New(), Wrap: wrap}, OperatorNamespace: opNS}
	for range 3 {
		time.Sleep(time.Second)
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "mesh"}}); err != nil {
			t.Fatal(err)
		}
	}
	log := writes.Log()
	for _, w := range remotes {
		log = append(log, w.Log()...)
	}
	return log
}

// importsIn says which members hold the federation's ServiceImport
// shop/cart.
func (e *markEnv) importsIn(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for name, c := range e.members {
		err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "cart"}, &mcsv1beta1.ServiceImport{})
		switch {
		case err == nil:
			out[name] = true
		case !apierrors.IsNotFound(err):
			t.Fatal(err)
		}
	}
	return out
}

// TestLinkerdServiceExport exports a Service of east in a Linkerd
// federation on a flat network and follows the label the Links select on
// east's own Service: remote-discovery, then federated=member for
// LocalFirst (the exported label back to the value a user had set), the
// ServiceImports in every member, no-op reconciles, the un-export and the
// federation's deletion restoring the user's value exactly.
func TestLinkerdServiceExport(t *testing.T) {
	e := setupMarks(t, meshv1alpha1.ProviderLinkerd, false)
	ctx := context.Background()
	east := e.members["east"]
	mustCreate(t, east, cartService(map[string]string{"app": "cart", "mirror.linkerd.io/exported": "false"}, nil))
	mustCreate(t, e.local(), marksFederation(meshv1alpha1.ProviderLinkerd, false))
	mustCreate(t, east, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}})

	t.Run("the exporter's Service is labelled for remote discovery", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "exported=remote-discovery on east", func() error {
			labels, _ := serviceMeta(t, east)
			if err := wantMeta(labels, map[string]string{"app": "cart", "mirror.linkerd.io/exported": "remote-discovery", "mirror.linkerd.io/federated": "-"}); err != nil {
				return err
			}
			if got := e.importsIn(t); !got["local"] || !got["east"] || !got["west"] {
				return testenv.Errorf("imports %v", got)
			}
			return nil
		})
		for _, name := range []string{"local", "west"} {
			err := e.members[name].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, &corev1.Service{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("%s: a Service was created: %v", name, err)
			}
		}
		rec := memberSvc(e.fed(t), "east")
		var prev *string
		for _, f := range rec.SharedFields {
			if f.Object.Kind == "Service" && f.Field == "metadata.labels[mirror.linkerd.io/exported]" {
				prev = f.Previous
			}
		}
		if prev == nil || *prev != "false" {
			t.Fatalf("east's record %+v", rec.SharedFields)
		}
	})

	t.Run("LocalFirst makes it a federated service member", func(t *testing.T) {
		e.setFailover(t, meshv1alpha1.FailoverLocalFirst)
		testenv.Eventually(t, 30*time.Second, "federated=member on east", func() error {
			labels, _ := serviceMeta(t, east)
			return wantMeta(labels, map[string]string{"app": "cart", "mirror.linkerd.io/exported": "false", "mirror.linkerd.io/federated": "member"})
		})
		testenv.Eventually(t, 30*time.Second, "export status", func() error {
			es := exportStatusOf(e.fed(t), "shop/cart")
			if es == nil || es.Scope != "east: mirrored to the linked peers; services without a ServiceExport are not labelled for a Link and stay local" {
				return testenv.Errorf("export %+v", es)
			}
			return nil
		})
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		if log := e.noopWrites(t); len(log) != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", len(log), log)
		}
	})

	t.Run("un-exporting restores the user's labels exactly", func(t *testing.T) {
		if err := east.Delete(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}}); err != nil {
			t.Fatal(err)
		}
		e.poke(t, "poke-unexport")
		testenv.Eventually(t, 30*time.Second, "labels restored", func() error {
			labels, _ := serviceMeta(t, east)
			if err := wantMeta(labels, map[string]string{"app": "cart", "mirror.linkerd.io/exported": "false", "mirror.linkerd.io/federated": "-"}); err != nil {
				return err
			}
			if got := e.importsIn(t); len(got) != 0 {
				return testenv.Errorf("imports %v", got)
			}
			for _, f := range memberSvc(e.fed(t), "east").SharedFields {
				if f.Object.Kind == "Service" {
					return testenv.Errorf("record kept %+v", f)
				}
			}
			return nil
		})
	})

	t.Run("deleting the federation restores the user's labels exactly", func(t *testing.T) {
		mustCreate(t, east, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}})
		// A member's ServiceExports are polled (they live in another API
		// server): poke the federation, as un-exporting does above.
		e.poke(t, "poke-reexport")
		testenv.Eventually(t, 30*time.Second, "federated=member again", func() error {
			labels, _ := serviceMeta(t, east)
			return wantMeta(labels, map[string]string{"mirror.linkerd.io/federated": "member"})
		})
		if err := e.local().Delete(ctx, e.fed(t)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "federation gone, labels restored", func() error {
			err := e.local().Get(ctx, client.ObjectKey{Name: "mesh"}, &meshv1alpha1.MeshFederation{})
			if !apierrors.IsNotFound(err) {
				return testenv.Errorf("federation still there: %v", err)
			}
			labels, _ := serviceMeta(t, east)
			return wantMeta(labels, map[string]string{"app": "cart", "mirror.linkerd.io/exported": "false", "mirror.linkerd.io/federated": "-"})
		})
	})
}

// TestCiliumServiceExport exports a Service of east in a Cilium
// ClusterMesh and follows the annotations on east's Service (global,
// shared) and on local's copy of it (global, not shared), the affinity
// from the failover preference, a member without the Service (imports,
// nothing created), no-op reconciles and the un-export restoring a user's
// affinity exactly.
func TestCiliumServiceExport(t *testing.T) {
	e := setupMarks(t, meshv1alpha1.ProviderCilium, false)
	ctx := context.Background()
	east, local := e.members["east"], e.local()
	mustCreate(t, east, cartService(nil, nil))
	mustCreate(t, local, cartService(nil, map[string]string{"service.cilium.io/affinity": "remote", "team": "shop"}))
	mustCreate(t, local, marksFederation(meshv1alpha1.ProviderCilium, false))
	mustCreate(t, east, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}})

	t.Run("the Service is global where it exists, shared by its exporter", func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "annotations", func() error {
			_, ann := serviceMeta(t, east)
			if err := wantMeta(ann, map[string]string{"service.cilium.io/global": "true", "service.cilium.io/shared": "true", "service.cilium.io/affinity": "none"}); err != nil {
				return fmt.Errorf("east: %w", err)
			}
			_, ann = serviceMeta(t, local)
			if err := wantMeta(ann, map[string]string{"service.cilium.io/global": "true", "service.cilium.io/shared": "false", "service.cilium.io/affinity": "none", "team": "shop"}); err != nil {
				return fmt.Errorf("local: %w", err)
			}
			if got := e.importsIn(t); !got["local"] || !got["east"] || !got["west"] {
				return testenv.Errorf("imports %v", got)
			}
			return nil
		})
		err := e.members["west"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "cart"}, &corev1.Service{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("west: a Service was created: %v", err)
		}
	})

	t.Run("LocalFirst is affinity local", func(t *testing.T) {
		e.setFailover(t, meshv1alpha1.FailoverLocalFirst)
		testenv.Eventually(t, 30*time.Second, "affinity local", func() error {
			for _, name := range []string{"local", "east"} {
				_, ann := serviceMeta(t, e.members[name])
				if err := wantMeta(ann, map[string]string{"service.cilium.io/affinity": "local"}); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			c := apimeta.FindStatusCondition(e.fed(t).Status.Conditions, meshv1alpha1.ServicesExportedCondition)
			if c == nil || c.Reason == meshv1alpha1.ConflictReason || c.Reason == meshv1alpha1.UnsupportedFeatureReason {
				return testenv.Errorf("ServicesExported %+v", c)
			}
			return nil
		})
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		if log := e.noopWrites(t); len(log) != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", len(log), log)
		}
	})

	t.Run("un-exporting restores the annotations exactly", func(t *testing.T) {
		if err := east.Delete(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}}); err != nil {
			t.Fatal(err)
		}
		e.poke(t, "poke-unexport")
		testenv.Eventually(t, 30*time.Second, "annotations restored", func() error {
			_, ann := serviceMeta(t, east)
			if err := wantMeta(ann, map[string]string{"service.cilium.io/global": "-", "service.cilium.io/shared": "-", "service.cilium.io/affinity": "-"}); err != nil {
				return fmt.Errorf("east: %w", err)
			}
			_, ann = serviceMeta(t, local)
			if err := wantMeta(ann, map[string]string{"service.cilium.io/global": "-", "service.cilium.io/shared": "-", "service.cilium.io/affinity": "remote", "team": "shop"}); err != nil {
				return fmt.Errorf("local: %w", err)
			}
			if got := e.importsIn(t); len(got) != 0 {
				return testenv.Errorf("imports %v", got)
			}
			return nil
		})
	})
}
