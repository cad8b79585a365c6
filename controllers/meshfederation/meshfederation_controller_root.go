package meshfederation

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/trust"
)

// Keys of the root state Secret meshfederation-<name>-ca.
const (
	rootCertKey = "tls.crt"
	rootKeyKey  = "tls.key"
	nextCertKey = "next.crt"
	nextKeyKey  = "next.key"
)

// CASecretName is the name of the Secret in the operator namespace holding
// a federation's root (and, during a rotation, the next root) with keys.
func CASecretName(fed string) string { return "meshfederation-" + fed + "-ca" }

// roots is the root material of a SharedRoot federation.
type roots struct {
	// current is the root in use outside a rotation (the old one during it).
	current *trust.CA
	// next is the root being introduced, nil when not rotating.
	next *trust.CA
	// supplied is the root in the user's Secret (secretRef), nil when
	// generated.
	supplied *trust.CA
	// created is true when the current root was created in this reconcile.
	created bool
}

func (rt *roots) byFingerprint(fp string) *trust.CA {
	for _, ca := range []*trust.CA{rt.current, rt.next} {
		if ca != nil && ca.Fingerprint() == fp {
			return ca
		}
	}
	return nil
}

// loadRoots reads (or, the first time, creates) the root state Secret.
func (r *Reconciler) loadRoots(ctx context.Context, fed *meshv1alpha1.MeshFederation, now time.Time) (*roots, error) {
	ns, name := r.OperatorNamespace, CASecretName(fed.Name)
	rt := &roots{}
	if ref := fed.Spec.Root.SecretRef; ref != nil {
		ca, err := r.suppliedRoot(ctx, ref.Name, now)
		if err != nil {
			return nil, err
		}
		rt.supplied = ca
	}
	state, err := getSecret(ctx, r.Local, ns, name)
	if err != nil {
		return nil, err
	}
	if state != nil && !owned(state, fed.Name) {
		return nil, outcome.Conflict("%s exists and was not created by MeshFederation %s; Meshplane does not take it over (delete or rename it)",
			describe("Secret", ns, name), fed.Name)
	}
	if state == nil || len(state.Data[rootCertKey]) == 0 {
		first := rt.supplied
		if first == nil {
			first, err = trust.GenerateRoot(trust.RootOptionsFrom(fed.Spec.Root.Generate), now)
			if err != nil {
				return nil, err
			}
		}
		rt.current, rt.created = first, true
		if err := r.writeRoots(ctx, fed, rt); err != nil {
			return nil, err
		}
		return rt, nil
	}
	// The state Secret holds material Meshplane wrote; an expired current
	// root is reported, never replaced silently.
	rt.current, err = trust.ParseCA(state.Data[rootCertKey], state.Data[rootKeyKey], now)
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason,
			"root in Secret %s/%s: %v; start a rotation (spec.rotation.trigger) to replace it", ns, name, err)
	}
	if len(state.Data[nextCertKey]) > 0 {
		rt.next, err = trust.ParseCA(state.Data[nextCertKey], state.Data[nextKeyKey], now)
		if err != nil {
			return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason,
				"next root in Secret %s/%s: %v; abort the rotation (spec.rotation.abort)", ns, name, err)
		}
	}
	return rt, nil
}

// suppliedRoot reads the root of the user's Secret (spec.root.secretRef).
func (r *Reconciler) suppliedRoot(ctx context.Context, name string, now time.Time) (*trust.CA, error) {
	ns := r.OperatorNamespace
	s, err := getSecret(ctx, r.Local, ns, name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
			"root Secret %s/%s not found; create it with tls.crt and tls.key (a cert-manager CA Certificate's Secret works as it is)", ns, name)
	}
	ca, err := trust.ParseCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], now)
	if err == nil {
		err = trust.ValidateRoot(ca.Cert, ca.Key, now)
	}
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason,
			"spec.root.secretRef: root Secret %s/%s (tls.crt, tls.key): %v; nothing already distributed was changed", ns, name, err)
	}
	return ca, nil
}

// writeRoots applies the state Secret with rt.current and rt.next; the
// next root's keys are removed when there is none.
func (r *Reconciler) writeRoots(ctx context.Context, fed *meshv1alpha1.MeshFederation, rt *roots) error {
	data := map[string][]byte{rootCertKey: rt.current.CertPEM, rootKeyKey: rt.current.KeyPEM}
	if rt.next != nil {
		data[nextCertKey], data[nextKeyKey] = rt.next.CertPEM, rt.next.KeyPEM
	}
	ns, name := r.OperatorNamespace, CASecretName(fed.Name)
	changes, err := r.applyTo(ctx, r.Local, fed, secret(ns, name, corev1.SecretTypeOpaque, data))
	if err != nil {
		return err
	}
	if changes.Wrote() {
		r.event(fed, corev1.EventTypeNormal, "RootStored", "Apply", "stored the root CA state in Secret %s/%s", ns, name)
	}
	return nil
}
