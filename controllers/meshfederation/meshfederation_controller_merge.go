package meshfederation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/trust"
)

// ownRoots returns the roots a member's mesh uses on its own, read without
// writing: a foreign issuer Secret's root key (or its issuer if
// self-signed), a foreign bundle ConfigMap, the mesh's self-signed CA
// (mesh.FederationTrust.SelfSignedCA), or, once Meshplane wrote the member,
// the root in its bundle that signed its issuer. ca is the mesh's
// self-signed CA, which Meshplane writes into the issuer Secret itself
// with the merged bundle; nil when the mesh has none.
func ownRoots(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member, now time.Time) (roots []*x509.Certificate, ca *trust.CA, err error) {
	t := m.target
	sec, err := getSecret(ctx, m.client, t.Namespace, t.IssuerSecret)
	if err != nil {
		return nil, nil, err
	}
	roots, err = foreignRoots(ctx, fed, m, sec)
	if err != nil {
		return nil, nil, err
	}
	if ca, err = selfSignedCA(ctx, m, now); err != nil {
		return nil, nil, err
	}
	if ca != nil {
		roots = append(roots, ca.Cert)
	}
	if len(roots) == 0 && owned(sec, fed.Name) {
		certs, err1 := trust.ParseCerts(sec.Data[t.CertKey])
		bundle, err2 := trust.ParseCerts(sec.Data[t.RootKey])
		if err1 == nil && err2 == nil {
			if r, err := trust.IssuerOf(certs[0], bundle); err == nil {
				roots = append(roots, r)
			}
		}
	}
	if len(roots) == 0 {
		return nil, nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
			"cluster %s: no root of its own found (%s: Secret %s/%s, ConfigMap %q%s); install the mesh first",
			m.spec.Name, m.spec.Provider, t.Namespace, t.IssuerSecret, t.BundleConfigMap, selfSignedHint(m))
	}
	return roots, ca, nil
}

// foreignRoots reads the roots in the member's issuer Secret and bundle
// ConfigMap when Meshplane did not create them.
func foreignRoots(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member, sec *corev1.Secret) ([]*x509.Certificate, error) {
	t := m.target
	var roots []*x509.Certificate
	add := func(data []byte) {
		if cs, err := trust.ParseCerts(data); err == nil {
			roots = append(roots, cs...)
		}
	}
	if sec != nil && !owned(sec, fed.Name) {
		if t.RootKey != "" && len(sec.Data[t.RootKey]) > 0 {
			add(sec.Data[t.RootKey])
		} else if cs, err := trust.ParseCerts(sec.Data[t.CertKey]); err == nil && trust.SignedBy(cs[0], cs[0]) {
			roots = append(roots, cs[0])
		}
	}
	if t.BundleConfigMap != "" {
		cm, err := getConfigMap(ctx, m.client, t.Namespace, t.BundleConfigMap)
		if err != nil {
			return nil, err
		}
		if cm != nil && !owned(cm, fed.Name) {
			add([]byte(cm.Data[t.BundleConfigMapKey]))
		}
	}
	return roots, nil
}

// selfSignedCA reads the CA the member's mesh generated itself, nil when it
// keeps none or has not generated one.
func selfSignedCA(ctx context.Context, m *member, now time.Time) (*trust.CA, error) {
	sc, ok := m.trust.SelfSignedCA(m.target.Namespace)
	if !ok {
		return nil, nil
	}
	self, err := getSecret(ctx, m.client, sc.Namespace, sc.Secret)
	if err != nil || self == nil {
		return nil, err
	}
	c, err := trust.ParseCA(self.Data[sc.CertKey], self.Data[sc.KeyKey], now)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: Secret %s/%s: %w", m.spec.Name, sc.Namespace, sc.Secret, err)
	}
	return c, nil
}

func selfSignedHint(m *member) string {
	if sc, ok := m.trust.SelfSignedCA(m.target.Namespace); ok {
		return ", Secret " + sc.Secret
	}
	return ""
}

// reconcileMerge collects every member's own roots, merges them, and
// writes the merged bundle to every member: into the bundle ConfigMap
// where the mesh has one; else into the issuer Secret, built from the
// mesh's own self-signed CA so the mesh keeps its CA and gains the other
// roots. Issuers are never replaced.
func (r *Reconciler) reconcileMerge(ctx context.Context, fed *meshv1alpha1.MeshFederation, members []*member, now time.Time) result {
	out := result{members: members, after: r.resync()}
	var all [][]*x509.Certificate
	cas := map[*member]*trust.CA{}
	for _, m := range members {
		if m.err != nil {
			continue
		}
		roots, ca, err := ownRoots(ctx, fed, m, now)
		if err != nil {
			m.fail(err)
			continue
		}
		all = append(all, roots)
		cas[m] = ca
	}
	bundle := trust.MergeBundles(all...)
	out.bundle, out.bundleKnown = bundle.Fingerprints(), true
	for _, m := range members {
		if m.err != nil {
			continue
		}
		if err := r.writeMerged(ctx, fed, m, cas[m], bundle); err != nil {
			m.fail(err)
			continue
		}
		m.bundle = bundle.Fingerprints()
		if cas[m] != nil {
			m.issuer, m.bundlePEM = cas[m], bundle.PEM()
		}
	}
	return out
}

// writeMerged writes the merged bundle to one member.
func (r *Reconciler) writeMerged(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member, ca *trust.CA, bundle *trust.Bundle) error {
	t := m.target
	var what string
	var changes apply.ChangeSet
	var err error
	switch {
	case t.BundleConfigMap != "":
		what = fmt.Sprintf("merged bundle (%d roots) to ConfigMap %s/%s", len(bundle.Certs()), t.Namespace, t.BundleConfigMap)
		changes, err = r.applyTo(ctx, m.client, fed, configMap(t.Namespace, t.BundleConfigMap, map[string]string{t.BundleConfigMapKey: string(bundle.PEM())}))
	case ca != nil:
		l := trust.LayoutFor(t, trust.Material{Issuer: ca, IssuerRoot: ca.Cert, Bundle: bundle})
		what = fmt.Sprintf("the mesh's own CA with the merged bundle (%d roots) to Secret %s/%s", len(bundle.Certs()), t.Namespace, t.IssuerSecret)
		changes, err = r.applyTo(ctx, m.client, fed, secret(t.Namespace, t.IssuerSecret, l.SecretType, l.Secret))
	default:
		self := "none is kept"
		if sc, ok := m.trust.SelfSignedCA(t.Namespace); ok {
			self = "Secret " + sc.Secret + " does not exist"
		}
		return fmt.Errorf("cluster %s: %s keeps its bundle in Secret %s/%s next to its CA key, which Meshplane did not create; in BundleMerge mode Meshplane only writes it from the mesh's self-signed CA (%s)",
			m.spec.Name, m.spec.Provider, t.Namespace, t.IssuerSecret, self)
	}
	if err != nil {
		return r.applyErr(m, err)
	}
	if changes.Wrote() {
		m.wrote = true
		r.event(fed, corev1.EventTypeNormal, "BundleWritten", "Apply", "cluster %s: wrote %s", m.spec.Name, what)
	}
	return nil
}
