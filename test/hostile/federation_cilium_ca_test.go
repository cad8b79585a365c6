package hostile

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// ClusterMesh TLS from the MeshFederation: the clustermesh-apiserver's
// certificate Secrets are Meshplane's; one of the same name Meshplane did
// not create (left by the chart's own TLS generation, or made by hand) is
// never taken over.

func init() {
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Cilium, Isolated: true, Name: "services: foreign clustermesh-apiserver-server-cert",
		Run: func(h *H) {
			h.Create(&meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
				Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Suspend: true}})
			foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "clustermesh-apiserver-server-cert",
				Labels: map[string]string{"cilium.io/helm-template-non-idempotent": "true"}},
				Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("chart's"), "tls.key": []byte("chart's"), "ca.crt": []byte("chart's")}}
			h.Create(foreign)
			snap := h.Snapshot(foreign)
			h.StartManager()
			f := ciliumFederation(1, "")
			h.Create(f)
			memberServicesCond(h, f, "local", meshv1alpha1.ConflictReason,
				"cluster local: Secret kube-system/clustermesh-apiserver-server-cert already exists and was not created by Meshplane; "+
					"it is never taken over: delete or rename it, or rename this object (nothing was applied)")
			// Trust is distributed all the same: the federation's own issuer.
			h.Condition(f, meshv1alpha1.DistributedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason)
			h.Unchanged(snap)
			// Nothing of the change was written: no other certificate, no
			// settings, an empty inventory.
			for _, name := range []string{"clustermesh-apiserver-admin-cert", "clustermesh-apiserver-local-cert", "clustermesh-apiserver-remote-cert"} {
				if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: "kube-system", Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
					h.Fatalf("Secret %s written beside a refused change: %v", name, err)
				}
			}
			noClusterMeshSettings(h)
			for _, c := range f.Status.Clusters {
				if c.Services != nil && len(c.Services.Inventory) > 0 {
					h.Fatalf("inventory of a refused change: %+v", c.Services.Inventory)
				}
			}
			// Once the foreign Secret is gone the member gets certificates of
			// its own and its settings.
			h.Must(h.C.Delete(h.Ctx, foreign))
			h.Must(h.Update(f, func() { f.Spec.Services.MeshID = "woken" }))
			h.Eventually("the federation's server certificate and settings", func() error {
				mi := &meshv1alpha1.MeshInstall{}
				h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: "cilium"}, mi))
				if mi.Spec.Cilium == nil || mi.Spec.Cilium.ClusterMesh == nil {
					return testenv.Errorf("no settings: %+v", mi.Spec.Cilium)
				}
				s := &corev1.Secret{}
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(foreign), s); err != nil {
					return err
				}
				if s.Labels["meshplane.io/owner"] == "" || !strings.Contains(string(s.Data["tls.crt"]), "BEGIN CERTIFICATE") {
					return testenv.Errorf("labels %v", s.Labels)
				}
				return nil
			})
			h.Must(h.C.Delete(h.Ctx, f))
		}})
}
