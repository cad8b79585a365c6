package hostile

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// A federation installs Linkerd's multicluster extension through the
// member's MeshInstall (spec.linkerd.multicluster) with a field manager of
// its own: a value a GitOps tool applied there (gateway off, where the
// federation's member has a gateway) is never overwritten.
func init() {
	Register(Case{Category: "foreign", Kind: "MeshFederation", Mesh: Linkerd, Isolated: true,
		Name: "services: the multicluster extension's links applied by a GitOps tool on the member's MeshInstall",
		Run: func(h *H) {
			crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "links.multicluster.linkerd.io"}}
			h.Must(h.C.Delete(h.Ctx, crd))
			h.Eventually("Link CRD gone", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(crd), crd); !apierrors.IsNotFound(err) {
					return testenv.Errorf("still there: %v", err)
				}
				return nil
			})
			h.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}})
			gitops := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": meshv1alpha1.GroupVersion.String(), "kind": "MeshInstall",
				"metadata": map[string]any{"name": "linkerd"},
				"spec": map[string]any{"provider": "Linkerd", "version": "edge-26.1.1", "suspend": true,
					"linkerd": map[string]any{"multicluster": map[string]any{"gateway": false, "links": []any{"far-away"}}}},
			}}
			h.Must(h.C.Apply(h.Ctx, client.ApplyConfigurationFromUnstructured(gitops), client.FieldOwner("argocd-controller")))
			mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}
			snap := h.Snapshot(mi)
			h.StartManager()
			f := GoodFederation(meshv1alpha1.ProviderLinkerd)
			f.Spec.Services = &meshv1alpha1.ServiceFederationSpec{}
			h.Create(f)
			h.Eventually("local's ServicesConnected is a Conflict naming the MeshInstall", func() error {
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f))
				for _, c := range f.Status.Clusters {
					mc := apimeta.FindStatusCondition(c.Conditions, meshv1alpha1.ServicesConnectedCondition)
					if c.Name == "local" && mc != nil && mc.Reason == meshv1alpha1.ConflictReason &&
						strings.Contains(mc.Message, "cluster local: the settings this federation writes into MeshInstall linkerd are set by another field manager") &&
						strings.Contains(mc.Message, "argocd-controller") {
						return nil
					}
				}
				return testenv.Errorf("clusters %+v", f.Status.Clusters)
			})
			h.Unchanged(snap)
			h.Must(h.C.Delete(h.Ctx, f))
			h.Eventually("federation gone", func() error {
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(f), f); !apierrors.IsNotFound(err) {
					return testenv.Errorf("still there: %v", err)
				}
				return nil
			})
			h.Unchanged(snap)
		}})
}
