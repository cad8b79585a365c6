package meshfederation

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/trust"
)

// member is one member cluster during a reconcile.
type member struct {
	spec meshv1alpha1.MemberCluster
	// trust is the member's mesh; target where it reads trust material.
	trust  mesh.FederationTrust
	target mesh.TrustTarget
	client client.Client
	// err says why the member does not hold its material; nil when synced.
	err error
	// unreachable is true when err is the cluster not answering.
	unreachable bool
	// wrote is true when something was written to the member.
	wrote bool
	// intermediate and bundle are what the member holds once synced.
	intermediate *x509.Certificate
	bundle       []string
	// issuer and bundlePEM are the member's issuer CA with its key and the
	// bundle it trusts, once written: certificates the federation issues
	// for the member (mesh.FederationCertificates) are signed by issuer.
	issuer    *trust.CA
	bundlePEM []byte
}

// fail records the member's first error. Terminal errors (a conflict, a
// bad reference or kubeconfig) are answers; anything else that is not an
// answer of the API server is the cluster not answering.
func (m *member) fail(err error) {
	if m.err == nil {
		m.err = err
		m.unreachable = remote.IsUnreachable(err) && !outcome.IsTerminal(err)
	}
}

// members resolves every member's provider and client. A provider that is
// not registered, or cannot take trust material, is terminal for the whole
// federation (nothing is written); a member whose cluster cannot be reached
// only fails that member.
func (r *Reconciler) members(ctx context.Context, fed *meshv1alpha1.MeshFederation) ([]*member, error) {
	var out []*member
	for _, spec := range fed.Spec.Clusters {
		w, err := r.Registry.FederationTrust(spec.Provider)
		if err != nil {
			return nil, err
		}
		need := mesh.CapSharedRootCA
		if fed.Spec.Mode == meshv1alpha1.FederationBundleMerge {
			need = mesh.CapTrustBundle
		}
		if err := mesh.Check(w, need); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
		}
		m := &member{spec: spec, trust: w, target: w.TrustTarget(spec.Namespace)}
		out = append(out, m)
		r.connect(ctx, m)
	}
	return out, nil
}

// connect sets the member's client: the local one, or one built from its
// kubeconfig Secret.
func (r *Reconciler) connect(ctx context.Context, m *member) {
	ref := m.spec.KubeconfigSecretRef
	if ref == nil {
		m.client = r.Local
		return
	}
	s, err := getSecret(ctx, r.Local, r.OperatorNamespace, ref.Name)
	switch {
	case err != nil:
		m.fail(err)
	case s == nil:
		m.fail(outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "cluster %s: kubeconfig Secret %s/%s not found", m.spec.Name, r.OperatorNamespace, ref.Name))
	default:
		if m.client, err = r.Remote.Client(s, ref.Key); err != nil {
			m.fail(fmt.Errorf("cluster %s: %w", m.spec.Name, err))
		}
	}
}

// intermediateOptions sizes a member's intermediate as the federation says
// and names it as its mesh expects (mesh.FederationTrust).
func intermediateOptions(fed *meshv1alpha1.MeshFederation, m *member) trust.IntermediateOptions {
	n := m.trust.IntermediateName(m.spec.Name, m.spec.TrustDomain)
	o := trust.IntermediateOptions{CommonName: n.CommonName, DNSNames: n.DNSNames, TrustDomain: n.TrustDomain, Organization: "meshplane",
		Lifetime: trust.DefaultIntermediateLifetime, KeyType: meshv1alpha1.KeyTypeECDSAP256}
	if in := fed.Spec.Intermediate; in != nil {
		if in.Lifetime != nil && in.Lifetime.Duration > 0 {
			o.Lifetime = in.Lifetime.Duration
		}
		if in.KeyType != "" {
			o.KeyType = in.KeyType
		}
	}
	return o
}

func renewBefore(fed *meshv1alpha1.MeshFederation) time.Duration {
	if in := fed.Spec.Intermediate; in != nil && in.RenewBefore != nil {
		return in.RenewBefore.Duration
	}
	return trust.DefaultRenewBefore
}

// reusable returns the member's current intermediate when it can stay: it
// parses with its key, was signed by issuerRoot, is not due for renewal,
// does not outlive the configured lifetime, and has the configured key type
// and name.
func reusable(existing *corev1.Secret, t mesh.TrustTarget, issuerRoot *x509.Certificate, o trust.IntermediateOptions,
	renew time.Duration, now time.Time) *trust.CA {
	if existing == nil || t.CertKey == "" || t.KeyKey == "" {
		return nil
	}
	certs, err := trust.ParseCerts(existing.Data[t.CertKey])
	if err != nil {
		return nil
	}
	key, err := trust.ParseKey(existing.Data[t.KeyKey])
	if err != nil || trust.ValidateCA(certs[0], key, now) != nil {
		return nil
	}
	c := certs[0]
	// An intermediate that outlives the configured lifetime (it was
	// shortened) is re-issued too.
	if c.NotAfter.After(now.Add(o.Lifetime).Add(time.Minute)) && c.NotAfter.Before(issuerRoot.NotAfter) {
		return nil
	}
	if !trust.SignedBy(c, issuerRoot) || trust.NeedsRenewal(c, renew, now) ||
		trust.KeyTypeOf(c.PublicKey) != o.KeyType || c.Subject.CommonName != o.CommonName {
		return nil
	}
	return &trust.CA{Cert: c, Key: key, CertPEM: trust.EncodeCert(c), KeyPEM: existing.Data[t.KeyKey]}
}

// distribute writes material to a member in one apply: the bundle
// ConfigMap first (so a new root is trusted before anything it signs
// arrives), then the issuer Secret. A new intermediate is issued only when
// the current one cannot stay. Objects Meshplane did not create are never
// written (the apply refuses before any write).
func (r *Reconciler) distribute(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member,
	root *trust.CA, bundle *trust.Bundle, opts trust.IntermediateOptions, now time.Time) error {
	issuerRoot := root.Cert
	t := m.target
	sec, err := getSecret(ctx, m.client, t.Namespace, t.IssuerSecret)
	if err != nil {
		return fmt.Errorf("cluster %s: reading Secret %s/%s: %w", m.spec.Name, t.Namespace, t.IssuerSecret, err)
	}
	var issuer *trust.CA
	if owned(sec, fed.Name) {
		issuer = reusable(sec, t, issuerRoot, opts, renewBefore(fed), now)
	}
	if issuer == nil {
		if issuer, err = trust.IssueIntermediate(root, opts, now); err != nil {
			return err
		}
	}
	l := trust.LayoutFor(t, trust.Material{Issuer: issuer, IssuerRoot: issuerRoot, Bundle: bundle})
	var objs []client.Object
	if l.ConfigMap != nil {
		objs = append(objs, configMap(t.Namespace, t.BundleConfigMap, l.ConfigMap))
	}
	objs = append(objs, secret(t.Namespace, t.IssuerSecret, l.SecretType, l.Secret))
	changes, err := r.applyTo(ctx, m.client, fed, objs...)
	m.wrote = m.wrote || changes.Wrote()
	if written(changes, "ConfigMap") {
		r.event(fed, corev1.EventTypeNormal, "BundleWritten", "Apply", "cluster %s: wrote trust bundle (%d roots) to ConfigMap %s/%s",
			m.spec.Name, len(bundle.Certs()), t.Namespace, t.BundleConfigMap)
	}
	if written(changes, "Secret") {
		r.event(fed, corev1.EventTypeNormal, "IssuerWritten", "Apply", "cluster %s: wrote intermediate %s (signed by root %s) to Secret %s/%s",
			m.spec.Name, trust.Fingerprint(issuer.Cert)[:12], trust.Fingerprint(issuerRoot)[:12], t.Namespace, t.IssuerSecret)
	}
	if err != nil {
		return r.applyErr(m, err)
	}
	m.intermediate, m.bundle = issuer.Cert, bundle.Fingerprints()
	m.issuer, m.bundlePEM = issuer, bundle.PEM()
	return nil
}

// applyErr names the member in an apply error; a missing namespace is a
// reference to fix (install the mesh first).
func (r *Reconciler) applyErr(m *member, err error) error {
	if apierrors.IsNotFound(err) {
		return outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
			"cluster %s: namespace %s not found; install the %s control plane (or set the member's namespace) first: %v",
			m.spec.Name, m.target.Namespace, m.spec.Provider, err)
	}
	return fmt.Errorf("cluster %s: %w", m.spec.Name, err)
}

// notRolled lists the member's pods carrying certificates of its mesh's CA
// (mesh.FederationTrust.CertificatePods) that started before since.
func notRolled(ctx context.Context, m *member, since time.Time) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, sel := range m.trust.CertificatePods() {
		var pods corev1.PodList
		opts := []client.ListOption{}
		if sel.Value == "" {
			opts = append(opts, client.HasLabels{sel.Label})
		} else {
			opts = append(opts, client.MatchingLabels{sel.Label: sel.Value})
		}
		if sel.InMeshNamespace {
			opts = append(opts, client.InNamespace(m.target.Namespace))
		}
		if err := m.client.List(ctx, &pods, opts...); err != nil {
			return nil, fmt.Errorf("cluster %s: listing pods: %w", m.spec.Name, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			started := p.CreationTimestamp.Time
			if p.Status.StartTime != nil {
				started = p.Status.StartTime.Time
			}
			id := m.spec.Name + ":" + p.Namespace + "/" + p.Name
			if !started.After(since) && !seen[id] { // same second: not provably after
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
