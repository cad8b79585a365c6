package hostile

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/harness"
	"github.com/meshplane/meshplane/test/testenv"
)

// Service export translated per mesh (labels and annotations on the
// user's own Service: Linkerd's mirror.linkerd.io, Cilium's
// service.cilium.io, Istio ambient's istio.io/global) and the MCS
// conditions on ServiceExports. Each case runs on its own API server: a
// Linkerd member's multicluster namespace, an Istio MeshInstall and a
// second member cluster are one per cluster.

func init() {
	registerExportMarkCases()
	registerExportCiliumCase()
	registerExportConflictPortsCase()
	registerExportInvalidCase()
}

func registerExportCiliumCase() {
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Cilium, Isolated: true,
		Name: "export: Cilium affinity annotation applied by another field manager",
		Run: func(h *H) {
			h.Create(&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
				Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Suspend: true}})
			// The clustermesh-apiserver and its load-balancer address, which
			// peers would reach.
			cm := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "clustermesh-apiserver"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"k8s-app": "clustermesh-apiserver"},
					Ports: []corev1.ServicePort{{Name: "apiserv", Port: 2379}}}}
			h.Create(cm)
			cm.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.96.6.1"}}
			h.Must(h.C.Status().Update(h.Ctx, cm))
			ns := h.Namespace(AnyMesh)
			f := ciliumFederation(1, "")
			f.Spec.Services.Failover = meshv1alpha1.FailoverLocalFirst
			svc := exportedSvc(h, h.C, ns, f.Name, nil)
			applied := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart", Annotations: map[string]string{"service.cilium.io/affinity": "remote"}}}
			applyAs(h, applied, "kustomize-controller")
			snap := h.Snapshot(svc)
			h.StartManager()
			h.Create(f)
			want := fmt.Sprintf("%[1]s/cart: local: Service %[1]s/cart: metadata.annotations[service.cilium.io/affinity] is \"remote\", applied by field manager kustomize-controller, "+
				"and the export sets \"local\"; Meshplane never takes over a field another owner applies (it would apply it back): "+
				"remove it from kustomize-controller's configuration or set it to \"local\" there, or delete the ServiceExport (nothing was set on the Service)", ns)
			c := h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ConflictReason, want)
			if !strings.HasPrefix(c.Message, want) {
				h.Fatalf("message %q, want %q", c.Message, want)
			}
			h.Unchanged(snap)
			noImport(h, ns)
			// The owner agrees on local: the other annotations are set, the
			// affinity stays the other owner's.
			applied = &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart", Annotations: map[string]string{"service.cilium.io/affinity": "local"}}}
			applyAs(h, applied, "kustomize-controller")
			h.Eventually("global and shared set", func() error {
				got := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(svc), got))
				a := got.Annotations
				if a["service.cilium.io/global"] != "true" || a["service.cilium.io/shared"] != "true" || a["service.cilium.io/affinity"] != "local" {
					return testenv.Errorf("annotations %v", a)
				}
				return nil
			})
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("annotations released with the federation, the other owner's kept", func() error {
				got := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(svc), got))
				a := got.Annotations
				if _, ok := a["service.cilium.io/global"]; ok || a["service.cilium.io/affinity"] != "local" {
					return testenv.Errorf("annotations %v", a)
				}
				if _, ok := a["service.cilium.io/shared"]; ok {
					return testenv.Errorf("annotations %v", a)
				}
				return nil
			})
		}})
}

// registerExportInvalidCase: a ServiceExport of an ExternalName Service
// (the MCS API exports none).
func registerExportInvalidCase() {
	Register(Case{Category: "missing-ref", Kind: "MeshFederation", Mesh: Istio, Name: "export: ServiceExport of an ExternalName Service",
		Run: func(h *H) {
			ns, f := exportFederation(h)
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "legacy.example.com"}}
			h.Create(svc)
			h.Create(serviceExport(ns, "legacy", f.Name))
			snap := h.Snapshot(svc)
			h.Create(f)
			want := fmt.Sprintf("ServiceExport %[1]s/legacy in local exports Service %[1]s/legacy of type ExternalName, which the Multi-Cluster Services API does not export: delete the ServiceExport", ns)
			c := h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ReferenceNotFoundReason, want)
			if c.Message != want {
				h.Fatalf("message %q, want %q", c.Message, want)
			}
			h.Eventually("ServiceExport Valid=False InvalidServiceType", func() error {
				se := &mcsv1beta1.ServiceExport{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "legacy"}, se))
				v := apimeta.FindStatusCondition(se.Status.Conditions, "Valid")
				if v == nil || v.Status != metav1.ConditionFalse || v.Reason != "InvalidServiceType" || v.Message != want {
					return testenv.Errorf("conditions %+v", se.Status.Conditions)
				}
				return nil
			})
			if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "legacy"}, &mcsv1beta1.ServiceImport{}); !apierrors.IsNotFound(err) {
				h.Fatalf("ServiceImport of an ExternalName Service: %v", err)
			}
			h.Unchanged(snap)
			h.Ready(f)
			controlServices(h)
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}

// exportedSvc creates Service ns/cart (8080/TCP) and its ServiceExport
// for federation fed, and returns the Service.
func exportedSvc(h *H, c client.Client, ns, fed string, labels map[string]string) *corev1.Service {
	h.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart", Labels: labels},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "cart"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}}
	h.Must(c.Create(h.Ctx, svc))
	h.Must(c.Create(h.Ctx, serviceExport(ns, "cart", fed)))
	return svc
}

// noImport asserts the federation wrote no ServiceImport ns/cart.
func noImport(h *H, ns string) {
	h.Helper()
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "cart"}, &mcsv1beta1.ServiceImport{}); !apierrors.IsNotFound(err) {
		h.Fatalf("ServiceImport %s/cart: %v", ns, err)
	}
}

func registerExportMarkCases() {
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Linkerd, Isolated: true,
		Name: "export: Linkerd label on the user's Service applied by another field manager",
		Run: func(h *H) {
			h.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}})
			h.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-multicluster"}})
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderLinkerd, "", false)
			svc := exportedSvc(h, h.C, ns, f.Name, nil)
			// A GitOps tool owns the label by server-side apply.
			applied := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart", Labels: map[string]string{"mirror.linkerd.io/exported": "false"}}}
			applyAs(h, applied, "argocd-controller")
			snap := h.Snapshot(svc)
			h.StartManager()
			h.Create(f)
			want := fmt.Sprintf("%[1]s/cart: local: Service %[1]s/cart: metadata.labels[mirror.linkerd.io/exported] is \"false\", applied by field manager argocd-controller, "+
				"and the export sets \"remote-discovery\"; Meshplane never takes over a field another owner applies (it would apply it back): "+
				"remove it from argocd-controller's configuration or set it to \"remote-discovery\" there, or delete the ServiceExport (nothing was set on the Service)", ns)
			c := h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ConflictReason, want)
			if !strings.HasPrefix(c.Message, want) {
				h.Fatalf("message %q, want %q", c.Message, want)
			}
			h.Unchanged(snap)
			noImport(h, ns)
			// The member's links are not held back by one Service.
			h.Condition(f, meshv1alpha1.ServicesConnectedCondition, metav1.ConditionTrue, "")
			// The other owner lets go: the export is written.
			release := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart"}}
			applyAs(h, release, "argocd-controller")
			h.Eventually("label set once the other owner let go", func() error {
				got := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(svc), got))
				if got.Labels["mirror.linkerd.io/exported"] != "remote-discovery" {
					return testenv.Errorf("labels %v", got.Labels)
				}
				return nil
			})
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("label released with the federation", func() error {
				got := &corev1.Service{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(svc), got))
				if _, ok := got.Labels["mirror.linkerd.io/exported"]; ok {
					return testenv.Errorf("labels %v", got.Labels)
				}
				return nil
			})
		}})
	Register(Case{Category: "capability", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "export: Istio ambient member on Istio 1.26 (before ambient multicluster)",
		Run: func(h *H) {
			h.Create(&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
				Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.26.3", Profile: meshv1alpha1.ProfileAmbient, Suspend: true}})
			ns := h.Namespace(AnyMesh)
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			svc := exportedSvc(h, h.C, ns, f.Name, map[string]string{"app": "cart"})
			snap := h.Snapshot(svc)
			h.StartManager()
			h.Create(f)
			want := "MeshInstall istio installs Istio 1.26.3 with profile Ambient: ambient multicluster (Services labelled istio.io/global, an istio-east-west Gateway on HBONE port 15008) " +
				"needs Istio 1.27.0 or later; upgrade spec.version, or use profile Sidecar to federate this member"
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason, "local: "+want)
			h.Stalled(f, meshv1alpha1.UnsupportedFeatureReason, "spec.services: no member's mesh can federate services with Meshplane (local (Istio))")
			h.Unchanged(snap)
			noImport(h, ns)
			// On 1.27 the member is refused for its flat network: ambient
			// multicluster needs the istio-east-west gateway
			// (federation_ambient_test.go). Never pretended.
			mi := &meshv1alpha1.MeshInstall{}
			h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: "istio"}, mi))
			h.Must(h.Update(mi, func() { mi.Spec.Version = "1.27.0" }))
			operatorNamespace(h)
			h.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: harness.OperatorNamespace, Name: "poke-ambient"}})
			memberServicesCond(h, f, "local", meshv1alpha1.UnsupportedFeatureReason, "local: MeshInstall istio installs Istio with profile Ambient and spec.services.eastWestGateway is false: "+
				"Istio supports ambient multicluster on different networks only, through an istio-east-west gateway on HBONE port 15008; "+
				"remove spec.services.eastWestGateway (or set it true), or use profile Sidecar for a flat network")
			h.Unchanged(snap)
			noImport(h, ns)
			// A federation of trust only is unaffected.
			control := GoodFederation(meshv1alpha1.ProviderIstio)
			control.Spec.Clusters[0].Namespace = h.Namespace(AnyMesh)
			h.Create(control)
			h.Ready(control)
			h.Must(h.C.Delete(h.Ctx, f))
			h.Must(h.C.Delete(h.Ctx, control))
		}})
}

// applyAs server-side applies svc's labels and annotations as field
// manager manager (a GitOps tool owning them).
func applyAs(h *H, svc *corev1.Service, manager string) {
	h.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	u.SetNamespace(svc.Namespace)
	u.SetName(svc.Name)
	u.SetLabels(svc.Labels)
	u.SetAnnotations(svc.Annotations)
	h.Must(h.C.Apply(h.Ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(manager), client.ForceOwnership))
}

// operatorNamespace makes sure the operator's namespace exists.
func operatorNamespace(h *H) {
	h.Helper()
	if err := h.C.Create(h.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: harness.OperatorNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		h.Fatal(err)
	}
}

// memberKubeconfig is an admin kubeconfig of a second API server.
func memberKubeconfig(h *H, s *cluster.Server) []byte {
	h.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["member"] = &clientcmdapi.Cluster{Server: s.Config.Host, CertificateAuthorityData: s.Config.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: s.Config.CertData, ClientKeyData: s.Config.KeyData, Token: s.Config.BearerToken}
	kc.Contexts["member"] = &clientcmdapi.Context{Cluster: "member", AuthInfo: "admin"}
	kc.CurrentContext = "member"
	data, err := clientcmd.Write(*kc)
	h.Must(err)
	return data
}

func registerExportConflictPortsCase() {
	Register(Case{Category: "conflict", Kind: "MeshFederation", Mesh: Istio, Isolated: true,
		Name: "export: two members export one Service with different ports",
		Run: func(h *H) {
			second, err := cluster.StartServer(cluster.EnvtestOptions{})
			h.Must(err)
			h.Cleanup(func() { _ = second.Stop() })
			east := testenv.NewClient(h.T, second.Config)
			ns := h.Namespace(AnyMesh)
			h.Must(east.Create(h.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
			f := servicesFederation(meshv1alpha1.ProviderIstio, ns, false)
			f.Spec.Clusters = append(f.Spec.Clusters, meshv1alpha1.MemberCluster{Name: "east", Provider: meshv1alpha1.ProviderIstio, Namespace: ns,
				KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "east-kubeconfig"}})
			localSvc := exportedSvc(h, h.C, ns, f.Name, nil)
			time.Sleep(1100 * time.Millisecond) // creationTimestamps have second precision
			eastSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cart"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9090, Protocol: corev1.ProtocolUDP}}}}
			h.Must(east.Create(h.Ctx, eastSvc))
			h.Must(east.Create(h.Ctx, serviceExport(ns, "cart", f.Name)))
			snap := h.Snapshot(localSvc)
			h.StartManager()
			operatorNamespace(h)
			h.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: harness.OperatorNamespace, Name: "east-kubeconfig"},
				Data: map[string][]byte{"kubeconfig": memberKubeconfig(h, second)}})
			h.Create(f)
			const conflict = "the exports conflict (PortConflict): east exports ports [9090/UDP], and local (the oldest export) ports [8080/TCP], type ClusterSetIP; " +
				"every ServiceImport takes local's: make the Services alike in every member"
			h.Condition(f, meshv1alpha1.ServicesExportedCondition, metav1.ConditionFalse, meshv1alpha1.ConflictReason, ns+"/cart: "+conflict)
			for name, c := range map[string]client.Client{"local": h.C, "east": east} {
				h.Eventually(name+" ServiceExport conditions", func() error {
					se := &mcsv1beta1.ServiceExport{}
					h.Must(c.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "cart"}, se))
					v := apimeta.FindStatusCondition(se.Status.Conditions, "Valid")
					cf := apimeta.FindStatusCondition(se.Status.Conditions, "Conflict")
					if v == nil || v.Status != metav1.ConditionTrue || cf == nil || cf.Status != metav1.ConditionTrue || cf.Reason != "PortConflict" || cf.Message != conflict {
						return testenv.Errorf("conditions %+v", se.Status.Conditions)
					}
					si := &mcsv1beta1.ServiceImport{}
					if err := c.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "cart"}, si); err != nil {
						return err
					}
					if len(si.Spec.Ports) != 1 || si.Spec.Ports[0].Port != 8080 || si.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
						return testenv.Errorf("ServiceImport ports %+v", si.Spec.Ports)
					}
					return nil
				})
			}
			es := &meshv1alpha1.MeshFederation{}
			h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), es))
			for _, e := range es.Status.Exports {
				if e.Name == "cart" && (e.Ready || !strings.HasPrefix(e.Message, conflict)) {
					h.Fatalf("status.exports %+v", e)
				}
			}
			// The exported Services are the users': never changed.
			h.Unchanged(snap)
			got := &corev1.Service{}
			h.Must(east.Get(h.Ctx, client.ObjectKeyFromObject(eastSvc), got))
			if got.Spec.Ports[0].Port != 9090 || len(got.Labels)+len(got.Annotations) != 0 {
				h.Fatalf("east's Service changed: %+v", got)
			}
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}
