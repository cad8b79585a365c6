package meshfederation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/trust"
)

// istioSelfSignedCA is the Secret where istiod keeps the CA it generated
// when no cacerts Secret is plugged in.
const istioSelfSignedCA = "istio-ca-secret"

// ownRoots returns the roots a member's mesh uses on its own, read without
// writing: a foreign issuer Secret's root key (or its issuer if
// self-signed), a foreign bundle ConfigMap, Istio's self-signed CA, or,
// once Meshplane wrote the member, the root in its bundle that signed its
// issuer. ca is the CA Meshplane keeps for the member when it writes the
// issuer Secret itself (Istio's own CA), nil otherwise.
func ownRoots(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member) (roots []*x509.Certificate, ca *trust.CA, err error) {
	t := m.target
	sec, err := getSecret(ctx, m.client, t.Namespace, t.IssuerSecret)
	if err != nil {
		return nil, nil, err
	}
	var cm *corev1.ConfigMap
	if t.BundleConfigMap != "" {
		if cm, err = getConfigMap(ctx, m.client, t.Namespace, t.BundleConfigMap); err != nil {
			return nil, nil, err
		}
	}
	add := func(data []byte) {
		if cs, err := trust.ParseCerts(data); err == nil {
			roots = append(roots, cs...)
		}
	}
	if sec != nil && !ownership.IsOwnedBy(sec, kind, "", fed.Name) {
		if t.RootKey != "" && len(sec.Data[t.RootKey]) > 0 {
			add(sec.Data[t.RootKey])
		} else if cs, err := trust.ParseCerts(sec.Data[t.CertKey]); err == nil && trust.SignedBy(cs[0], cs[0]) {
			roots = append(roots, cs[0])
		}
	}
	if cm != nil && !ownership.IsOwnedBy(cm, kind, "", fed.Name) {
		add([]byte(cm.Data[t.BundleConfigMapKey]))
	}
	if m.spec.Provider == meshv1alpha1.ProviderIstio {
		self, err := getSecret(ctx, m.client, t.Namespace, istioSelfSignedCA)
		if err != nil {
			return nil, nil, err
		}
		if self != nil {
			c, err := trust.ParseCA(self.Data["ca-cert.pem"], self.Data["ca-key.pem"], timeNow())
			if err != nil {
				return nil, nil, fmt.Errorf("cluster %s: Secret %s/%s: %w", m.spec.Name, t.Namespace, istioSelfSignedCA, err)
			}
			ca = c
			roots = append(roots, c.Cert)
		}
	}
	if len(roots) == 0 && sec != nil && ownership.IsOwnedBy(sec, kind, "", fed.Name) {
		certs, err1 := trust.ParseCerts(sec.Data[t.CertKey])
		bundle, err2 := trust.ParseCerts(sec.Data[t.RootKey])
		if err1 == nil && err2 == nil {
			if r, err := trust.IssuerOf(certs[0], bundle); err == nil {
				roots = append(roots, r)
			}
		}
	}
	if len(roots) == 0 {
		return nil, nil, &notFoundError{msg: fmt.Sprintf("cluster %s: no root of its own found (%s: Secret %s/%s, ConfigMap %q%s); install the mesh first",
			m.spec.Name, m.spec.Provider, t.Namespace, t.IssuerSecret, t.BundleConfigMap, istioHint(m))}
	}
	return roots, ca, nil
}

func istioHint(m *member) string {
	if m.spec.Provider == meshv1alpha1.ProviderIstio {
		return ", Secret " + istioSelfSignedCA
	}
	return ""
}

// reconcileMerge collects every member's own roots, merges them, and
// writes the merged bundle to every member: Linkerd's trust-roots
// ConfigMap; Istio's cacerts, built from istiod's own self-signed CA so the
// mesh keeps its CA and gains the other roots. Issuers are never replaced.
func (r *Reconciler) reconcileMerge(ctx context.Context, fed *meshv1alpha1.MeshFederation, members []*member) (*result, error) {
	res := &result{members: members, after: r.resync()}
	var all [][]*x509.Certificate
	cas := map[*member]*trust.CA{}
	for _, m := range members {
		if m.err != nil {
			continue
		}
		roots, ca, err := ownRoots(ctx, fed, m)
		if err != nil {
			m.fail(err)
			continue
		}
		all = append(all, roots)
		cas[m] = ca
	}
	bundle := trust.MergeBundles(all...)
	fed.Status.BundleFingerprints = bundle.Fingerprints()
	if len(fed.Status.BundleFingerprints) > maxFingerprints {
		fed.Status.BundleFingerprints = fed.Status.BundleFingerprints[:maxFingerprints]
	}
	labels := ownership.Labels(kind, "", fed.Name)
	for _, m := range members {
		if m.err != nil {
			continue
		}
		t := m.target
		if t.BundleConfigMap != "" {
			cm, err := getConfigMap(ctx, m.client, t.Namespace, t.BundleConfigMap)
			if err == nil {
				err = checkOwned(m.spec.Name, cm, "ConfigMap", fed.Name)
			}
			if err != nil {
				m.fail(err)
				continue
			}
			wrote, err := applyConfigMap(ctx, m.client, cm, t.Namespace, t.BundleConfigMap, labels, map[string]string{t.BundleConfigMapKey: string(bundle.PEM())})
			if err != nil {
				m.fail(r.applyErr(m, err))
				continue
			}
			if wrote {
				m.wrote = true
				r.event(fed, corev1.EventTypeNormal, "BundleWritten", "Apply", "cluster %s: wrote merged bundle (%d roots) to ConfigMap %s/%s",
					m.spec.Name, len(bundle.Certs()), t.Namespace, t.BundleConfigMap)
			}
		} else if ca := cas[m]; ca != nil {
			sec, err := getSecret(ctx, m.client, t.Namespace, t.IssuerSecret)
			if err == nil {
				err = checkOwned(m.spec.Name, sec, "Secret", fed.Name)
			}
			if err != nil {
				m.fail(err)
				continue
			}
			l := trust.LayoutFor(t, trust.Material{Issuer: ca, IssuerRoot: ca.Cert, Bundle: bundle})
			wrote, err := applySecret(ctx, m.client, sec, t.Namespace, t.IssuerSecret, labels, l.SecretType, l.Secret, nil)
			if err != nil {
				m.fail(r.applyErr(m, err))
				continue
			}
			if wrote {
				m.wrote = true
				r.event(fed, corev1.EventTypeNormal, "BundleWritten", "Apply", "cluster %s: wrote istiod's own CA with the merged bundle (%d roots) to Secret %s/%s",
					m.spec.Name, len(bundle.Certs()), t.Namespace, t.IssuerSecret)
			}
		} else {
			m.fail(fmt.Errorf("cluster %s: %s keeps its bundle in Secret %s/%s next to its CA key, which Meshplane did not create; in BundleMerge mode Meshplane only writes it from istiod's self-signed CA (%s)",
				m.spec.Name, m.spec.Provider, t.Namespace, t.IssuerSecret, istioSelfSignedCA))
			continue
		}
		m.bundle = bundle.Fingerprints()
	}
	return res, nil
}

// timeNow is the validity clock for certificates read from members.
var timeNow = time.Now
