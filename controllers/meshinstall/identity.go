package meshinstall

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/install"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// Names of the Secrets holding a generated Linkerd identity, in the
// operator namespace. They carry no owner reference: a re-created
// MeshInstall finds them again, so the mesh keeps its identity.
func anchorSecretName(mi *meshv1alpha1.MeshInstall) string {
	return "meshinstall-" + mi.Name + "-trust-anchor"
}
func issuerSecretName(mi *meshv1alpha1.MeshInstall) string {
	return "meshinstall-" + mi.Name + "-issuer"
}

// identity returns Linkerd's trust material: referenced Secrets (checked),
// the trust roots a MeshFederation wrote (external), or generated ones.
// Other meshes have none.
func (r *Reconciler) identity(ctx context.Context, mi *meshv1alpha1.MeshInstall, ns string) (*mesh.Identity, error) {
	if mi.Spec.Provider != meshv1alpha1.ProviderLinkerd {
		return nil, nil
	}
	var spec meshv1alpha1.LinkerdIdentity
	if mi.Spec.Linkerd != nil && mi.Spec.Linkerd.Identity != nil {
		spec = *mi.Spec.Linkerd.Identity
	}
	now := r.now()
	switch {
	case spec.External != nil && *spec.External:
		return r.externalIdentity(ctx, ns)
	case spec.TrustAnchorSecretRef != nil:
		return r.referencedIdentity(ctx, &spec, now)
	}
	return r.generatedIdentity(ctx, mi, &spec, now)
}

func (r *Reconciler) externalIdentity(ctx context.Context, ns string) (*mesh.Identity, error) {
	t := linkerd.New().TrustTarget(ns)
	var cm corev1.ConfigMap
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.BundleConfigMap}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, waiting(meshv1alpha1.WaitingReason, 10*time.Second,
				"identity.external is set: waiting for a MeshFederation to write ConfigMap %s/%s", ns, t.BundleConfigMap)
		}
		return nil, err
	}
	bundle := cm.Data[t.BundleConfigMapKey]
	if _, err := install.ParseCerts([]byte(bundle)); err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "ConfigMap %s/%s key %s: %v", ns, t.BundleConfigMap, t.BundleConfigMapKey, err)
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

func (r *Reconciler) referencedIdentity(ctx context.Context, spec *meshv1alpha1.LinkerdIdentity, now time.Time) (*mesh.Identity, error) {
	const af, isf = "spec.linkerd.identity.trustAnchorSecretRef", "spec.linkerd.identity.issuerSecretRef"
	as, err := r.secret(ctx, spec.TrustAnchorSecretRef.Name, af)
	if err != nil {
		return nil, err
	}
	key := spec.TrustAnchorSecretRef.Key
	if key == "" {
		key = "ca.crt"
		if len(as.Data[key]) == 0 {
			key = "tls.crt"
		}
	}
	anchors, err := install.ParseCerts(as.Data[key])
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "%s: Secret %s key %s: %v", af, as.Name, key, err)
	}
	is, err := r.secret(ctx, spec.IssuerSecretRef.Name, isf)
	if err != nil {
		return nil, err
	}
	issuer, err := install.ParseKeyPair(is.Data[corev1.TLSCertKey], is.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "%s: Secret %s (tls.crt, tls.key): %v", isf, is.Name, err)
	}
	if err := install.VerifyIssuer(issuer, anchors, now); err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "%s: %v; issue the issuer from the trust anchor in %s", isf, err, as.Name)
	}
	return &mesh.Identity{TrustAnchorsPEM: string(as.Data[key]), IssuerCertPEM: string(issuer.CertPEM), IssuerKeyPEM: string(issuer.KeyPEM)}, nil
}

// generatedIdentity loads or creates the trust anchor and issuer, renewing
// the issuer when a third of its life remains.
func (r *Reconciler) generatedIdentity(ctx context.Context, mi *meshv1alpha1.MeshInstall, spec *meshv1alpha1.LinkerdIdentity, now time.Time) (*mesh.Identity, error) {
	anchor, err := r.loadOrCreate(ctx, mi, anchorSecretName(mi), nil, now, 0)
	if err != nil {
		return nil, err
	}
	lifetime := install.DefaultIssuerLifetime
	if spec.IssuerLifetime != nil && spec.IssuerLifetime.Duration > 0 {
		lifetime = spec.IssuerLifetime.Duration
	}
	issuer, err := r.loadOrCreate(ctx, mi, issuerSecretName(mi), anchor, now, lifetime)
	if err != nil {
		return nil, err
	}
	return &mesh.Identity{TrustAnchorsPEM: string(anchor.CertPEM), IssuerCertPEM: string(issuer.CertPEM), IssuerKeyPEM: string(issuer.KeyPEM)}, nil
}

// loadOrCreate reads a generated key pair, or generates and stores it. A
// Secret of that name that Meshplane did not create is a Conflict.
func (r *Reconciler) loadOrCreate(ctx context.Context, mi *meshv1alpha1.MeshInstall, name string, parent *install.KeyPair, now time.Time, lifetime time.Duration) (*install.KeyPair, error) {
	var s corev1.Secret
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: r.OperatorNamespace, Name: name}, &s)
	switch {
	case err == nil:
		if !ownership.IsOwnedBy(&s, "MeshInstall", "", mi.Name) {
			return nil, outcome.Stalled(meshv1alpha1.ConflictReason, "Secret %s/%s exists and was not created by Meshplane for MeshInstall %s; "+
				"reference it with spec.linkerd.identity, or delete it", r.OperatorNamespace, name, mi.Name)
		}
		kp, perr := install.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		if perr != nil {
			return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "generated identity Secret %s/%s is damaged (%v); delete it to generate a new one",
				r.OperatorNamespace, name, perr)
		}
		stale := parent != nil && (install.NeedsRenewal(kp.Cert, now) || install.VerifyIssuer(kp, []*x509.Certificate{parent.Cert}, now) != nil)
		if !stale {
			return kp, nil
		}
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	var kp *install.KeyPair
	var gerr error
	if parent == nil {
		kp, gerr = install.GenerateTrustAnchor(now)
	} else {
		kp, gerr = install.GenerateIssuer(parent, now, lifetime)
	}
	if gerr != nil {
		return nil, gerr
	}
	data := map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM}
	if parent != nil {
		data["ca.crt"] = parent.CertPEM
	}
	out := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.OperatorNamespace, Labels: ownership.Labels("MeshInstall", "", mi.Name)},
		Type:       corev1.SecretTypeTLS, Data: data,
	}
	if err == nil {
		s.Data = data
		if uerr := r.Update(ctx, &s, client.FieldOwner(ownership.FieldManager)); uerr != nil {
			return nil, uerr
		}
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "IdentityRenewed", "renewed Linkerd identity certificate in Secret %s/%s (valid until %s)",
			r.OperatorNamespace, name, kp.Cert.NotAfter.Format(time.RFC3339))
		return kp, nil
	}
	if cerr := r.Create(ctx, out, client.FieldOwner(ownership.FieldManager)); cerr != nil {
		return nil, fmt.Errorf("storing generated identity in Secret %s/%s: %w", r.OperatorNamespace, name, cerr)
	}
	r.Recorder.Eventf(mi, corev1.EventTypeNormal, "IdentityGenerated", "generated Linkerd identity certificate (ECDSA P-256) in Secret %s/%s", r.OperatorNamespace, name)
	return kp, nil
}
