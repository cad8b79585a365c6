package hostile

import (
	"fmt"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// MeshFederation spec cases: contradictory trust settings the API server
// refuses before any certificate is issued or any member is contacted.

var fedSeq atomic.Int32

// GoodFederation is a valid SharedRoot MeshFederation with a generated root
// and the local cluster as its only member, running provider p; its name is
// unique in the suite (the kind is cluster-scoped).
func GoodFederation(p meshv1alpha1.Provider) *meshv1alpha1.MeshFederation {
	return &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hostile-fed-%d", fedSeq.Add(1))},
		Spec: meshv1alpha1.MeshFederationSpec{Mode: meshv1alpha1.FederationSharedRoot,
			Root:     &meshv1alpha1.RootCA{Generate: &meshv1alpha1.GeneratedRoot{}},
			Clusters: []meshv1alpha1.MemberCluster{{Name: "local", Provider: p}}}}
}

func init() {
	edits := []struct {
		name string
		edit func(f *meshv1alpha1.MeshFederation)
		want []string
	}{
		{"root generated and supplied", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Root.SecretRef = &meshv1alpha1.SecretKeyReference{Name: "root"}
		}, []string{"set exactly one of root.generate and root.secretRef"}},
		{"shared root without root", func(f *meshv1alpha1.MeshFederation) { f.Spec.Root = nil },
			[]string{"mode SharedRoot needs root (generate or secretRef)"}},
		{"duplicate member names", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Clusters = append(f.Spec.Clusters, meshv1alpha1.MemberCluster{Name: "local", Provider: meshv1alpha1.ProviderIstio,
				KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "remote"}})
		}, []string{"cluster names must be unique"}},
		{"two local members", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Clusters = append(f.Spec.Clusters, meshv1alpha1.MemberCluster{Name: "other", Provider: meshv1alpha1.ProviderIstio})
		}, []string{"at most one cluster may omit kubeconfigSecretRef"}},
		{"linkerd member with an RSA root", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Clusters[0].Provider = meshv1alpha1.ProviderLinkerd
			f.Spec.Root.Generate.KeyType = "RSA2048"
		}, []string{"Linkerd requires ECDSA P-256 certificates"}},
		{"root lifetime of 30 minutes", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Root.Generate.Lifetime = &metav1.Duration{Duration: 30 * time.Minute}
		}, []string{"spec.root.generate.lifetime", "lifetime must be between 1h and 175200h; got 30m0s"}},
		{"intermediate renewBefore over lifetime", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Intermediate = &meshv1alpha1.IntermediateCA{Lifetime: &metav1.Duration{Duration: 2 * time.Hour},
				RenewBefore: &metav1.Duration{Duration: 3 * time.Hour}}
		}, []string{"intermediate renewBefore must be shorter than its lifetime"}},
		{"no members", func(f *meshv1alpha1.MeshFederation) { f.Spec.Clusters = nil },
			[]string{"spec.clusters"}},
	}
	for _, e := range edits {
		Register(Case{Category: "spec", Kind: "MeshFederation", Mesh: AnyMesh, Name: "create " + e.name,
			Run: func(h *H) {
				f := GoodFederation(meshv1alpha1.ProviderIstio)
				e.edit(f)
				h.Refused(f, e.want...)
			}})
	}
}
