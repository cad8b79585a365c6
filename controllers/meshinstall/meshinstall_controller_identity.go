package meshinstall

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/trust"
)

// Names of the Secrets holding a generated identity, in the operator
// namespace. They carry no owner reference: a re-created MeshInstall finds
// them again, so the mesh keeps its identity.
func anchorSecretName(mi *meshv1alpha1.MeshInstall) string {
	return "meshinstall-" + mi.Name + "-trust-anchor"
}
func issuerSecretName(mi *meshv1alpha1.MeshInstall) string {
	return "meshinstall-" + mi.Name + "-issuer"
}

// identity returns the trust material of a mesh that takes one
// (mesh.IdentityInstaller): referenced Secrets (checked), the trust roots a
// MeshFederation wrote (external), or generated ones. Other meshes have
// none.
func (r *Reconciler) identity(ctx context.Context, s *scope) (*mesh.Identity, error) {
	ip, ok := s.p.(mesh.IdentityInstaller)
	if !ok {
		return nil, nil
	}
	spec := ip.IdentitySpec(s.mi)
	now := r.Clock.Now()
	switch {
	case spec.External:
		return r.externalIdentity(ctx, ip.TrustTarget(s.ns))
	case spec.TrustAnchorRef != nil:
		return r.referencedIdentity(ctx, spec, now)
	}
	return r.generatedIdentity(ctx, s.mi, spec, now)
}

func (r *Reconciler) externalIdentity(ctx context.Context, t mesh.TrustTarget) (*mesh.Identity, error) {
	var cm corev1.ConfigMap
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.BundleConfigMap}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, outcome.Wait(meshv1alpha1.WaitingReason, 10*time.Second,
				"identity.external is set: waiting for a MeshFederation to write ConfigMap %s/%s", t.Namespace, t.BundleConfigMap)
		}
		return nil, err
	}
	bundle := cm.Data[t.BundleConfigMapKey]
	if _, err := trust.ParseCerts([]byte(bundle)); err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "ConfigMap %s/%s key %s: %v", t.Namespace, t.BundleConfigMap, t.BundleConfigMapKey, err)
	}
	return &mesh.Identity{TrustAnchorsPEM: bundle, External: true}, nil
}

func (r *Reconciler) secret(ctx context.Context, name, field string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.OperatorNamespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "%s names Secret %s/%s, which does not exist; create it in the operator namespace",
				field, r.OperatorNamespace, name)
		}
		return nil, err
	}
	return &s, nil
}

func (r *Reconciler) referencedIdentity(ctx context.Context, spec mesh.IdentitySpec, now time.Time) (*mesh.Identity, error) {
	af, isf := spec.Field+".trustAnchorSecretRef", spec.Field+".issuerSecretRef"
	as, err := r.secret(ctx, spec.TrustAnchorRef.Name, af)
	if err != nil {
		return nil, err
	}
	key := spec.TrustAnchorRef.Key
	if key == "" {
		key = "ca.crt"
		if len(as.Data[key]) == 0 {
			key = corev1.TLSCertKey
		}
	}
	anchors, err := trust.ParseCerts(as.Data[key])
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "%s: Secret %s key %s: %v", af, as.Name, key, err)
	}
	if spec.IssuerRef == nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%s is set without %s; name the issuer's Secret too", af, isf)
	}
	is, err := r.secret(ctx, spec.IssuerRef.Name, isf)
	if err != nil {
		return nil, err
	}
	issuer, err := trust.ParseKeyPair(is.Data[corev1.TLSCertKey], is.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "%s: Secret %s (tls.crt, tls.key): %v", isf, is.Name, err)
	}
	if err := trust.VerifyIssuer(issuer, anchors, now); err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "%s: %v; issue the issuer from the trust anchor in %s", isf, err, as.Name)
	}
	return &mesh.Identity{TrustAnchorsPEM: string(as.Data[key]), IssuerCertPEM: string(issuer.CertPEM), IssuerKeyPEM: string(issuer.KeyPEM)}, nil
}

// generatedIdentity loads or creates the trust anchor and issuer, renewing
// the issuer by trust's rule (a third of its life left, or no longer
// issued by the anchor), and stores what it generated.
func (r *Reconciler) generatedIdentity(ctx context.Context, mi *meshv1alpha1.MeshInstall, spec mesh.IdentitySpec, now time.Time) (*mesh.Identity, error) {
	names := trust.IdentityNames{Anchor: spec.AnchorName, Issuer: spec.IssuerName}
	anchor, newAnchor, err := r.loadOrCreate(ctx, mi, spec.Field, anchorSecretName(mi), nil, func() (*trust.CA, error) {
		return trust.GenerateAnchor(names, now)
	})
	if err != nil {
		return nil, err
	}
	issuer, newIssuer, err := r.loadOrCreate(ctx, mi, spec.Field, issuerSecretName(mi), func(kp *trust.CA) bool {
		return trust.IssuerStale(kp, anchor, now)
	}, func() (*trust.CA, error) {
		return trust.GenerateIssuer(anchor, names, spec.IssuerLifetime, now)
	})
	if err != nil {
		return nil, err
	}
	var objs []client.Object
	if newAnchor {
		objs = append(objs, r.identitySecret(anchorSecretName(mi), anchor, nil))
	}
	if newIssuer {
		objs = append(objs, r.identitySecret(issuerSecretName(mi), issuer, anchor))
	}
	if err := r.storeIdentity(ctx, mi, objs); err != nil {
		return nil, err
	}
	return &mesh.Identity{TrustAnchorsPEM: string(anchor.CertPEM), IssuerCertPEM: string(issuer.CertPEM), IssuerKeyPEM: string(issuer.KeyPEM)}, nil
}

// loadOrCreate reads a generated key pair, or generates one when it is
// missing or stale (and says so). A Secret of that name that Meshplane did
// not create is a Conflict.
func (r *Reconciler) loadOrCreate(ctx context.Context, mi *meshv1alpha1.MeshInstall, field, name string, stale func(*trust.CA) bool, generate func() (*trust.CA, error)) (*trust.CA, bool, error) {
	var s corev1.Secret
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.OperatorNamespace, Name: name}, &s)
	switch {
	case err == nil:
		if !ownership.IsOwnedBy(&s, Kind, "", mi.Name) {
			return nil, false, outcome.Stalled(meshv1alpha1.ConflictReason, "Secret %s/%s exists and was not created by Meshplane for MeshInstall %s; "+
				"reference it with %s, or delete it", r.OperatorNamespace, name, mi.Name, field)
		}
		kp, perr := trust.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		if perr != nil {
			return nil, false, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "generated identity Secret %s/%s is damaged (%v); delete it to generate a new one",
				r.OperatorNamespace, name, perr)
		}
		if stale == nil || !stale(kp) {
			return kp, false, nil
		}
	case !apierrors.IsNotFound(err):
		return nil, false, err
	}
	kp, err := generate()
	return kp, err == nil, err
}

// identitySecret is the Secret of a generated key pair; an issuer's also
// holds its anchor (ca.crt).
func (r *Reconciler) identitySecret(name string, kp, parent *trust.CA) *corev1.Secret {
	data := map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM}
	if parent != nil {
		data["ca.crt"] = parent.CertPEM
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.OperatorNamespace},
		Type:       corev1.SecretTypeTLS, Data: data,
	}
}

// storeIdentity writes generated identity Secrets through internal/apply,
// with no owner reference: the identity outlives the MeshInstall.
func (r *Reconciler) storeIdentity(ctx context.Context, mi *meshv1alpha1.MeshInstall, objs []client.Object) error {
	if len(objs) == 0 {
		return nil
	}
	res, err := r.applier(r.APIReader).ApplyDetached(ctx, apply.Owner{Object: mi, Kind: Kind}, objs, false)
	if err != nil {
		return fmt.Errorf("storing the generated identity: %w", err)
	}
	for _, c := range res.Changes.Written() {
		reason, note := "IdentityGenerated", "generated %s identity certificate in Secret %s/%s"
		if c.Action == apply.Configured {
			reason, note = "IdentityRenewed", "renewed %s identity certificate in Secret %s/%s"
		}
		r.event(mi, reason, "Apply", note, mi.Spec.Provider, c.Object.Namespace, c.Object.Name)
	}
	return nil
}
