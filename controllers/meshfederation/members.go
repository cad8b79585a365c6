package meshfederation

import (
	"context"
	"crypto/x509"
	"errors"
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
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/trust"
)

// member is one member cluster during a reconcile.
type member struct {
	spec   meshv1alpha1.MemberCluster
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
}

func (m *member) fail(err error) {
	if m.err == nil {
		m.err = err
		m.unreachable = remote.IsUnreachable(err) && !isKnown(err)
	}
}

// isKnown reports errors of this package or the remote package that are
// answers, not silence.
func isKnown(err error) bool {
	var c *ConflictError
	var k *remote.InvalidKubeconfigError
	var n *notFoundError
	return errors.As(err, &c) || errors.As(err, &k) || errors.As(err, &n) || outcome.IsTerminal(err)
}

// notFoundError says a member-level reference or namespace is missing.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string  { return e.msg }
func (e *notFoundError) Reason() string { return meshv1alpha1.ReferenceNotFoundReason }

// members resolves every member's provider and client. A provider that is
// not registered, or cannot take trust material, is terminal for the whole
// federation (nothing is written); a member whose cluster cannot be reached
// only fails that member.
func (r *Reconciler) members(ctx context.Context, fed *meshv1alpha1.MeshFederation) ([]*member, error) {
	var out []*member
	for _, spec := range fed.Spec.Clusters {
		w, err := r.Registry.TrustWriter(spec.Provider)
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
		m := &member{spec: spec, target: w.TrustTarget(spec.Namespace)}
		out = append(out, m)
		if spec.KubeconfigSecretRef == nil {
			m.client = r.Local
			continue
		}
		ref := spec.KubeconfigSecretRef
		s, err := getSecret(ctx, r.Local, r.OperatorNamespace, ref.Name)
		switch {
		case err != nil:
			m.fail(err)
		case s == nil:
			m.fail(&notFoundError{msg: fmt.Sprintf("cluster %s: kubeconfig Secret %s/%s not found", spec.Name, r.OperatorNamespace, ref.Name)})
		default:
			if m.client, err = r.Remote.Client(s, ref.Key); err != nil {
				m.fail(fmt.Errorf("cluster %s: %w", spec.Name, err))
			}
		}
	}
	return out, nil
}

// intermediateOptions names a member's intermediate as its mesh expects:
// Linkerd checks the issuer's name identity.linkerd.<trust domain>.
func intermediateOptions(fed *meshv1alpha1.MeshFederation, m *member) trust.IntermediateOptions {
	o := trust.IntermediateOptions{Organization: "meshplane", TrustDomain: m.spec.TrustDomain,
		Lifetime: trust.DefaultIntermediateLifetime, KeyType: meshv1alpha1.KeyTypeECDSAP256}
	if in := fed.Spec.Intermediate; in != nil {
		if in.Lifetime != nil && in.Lifetime.Duration > 0 {
			o.Lifetime = in.Lifetime.Duration
		}
		if in.KeyType != "" {
			o.KeyType = in.KeyType
		}
	}
	switch m.spec.Provider {
	case meshv1alpha1.ProviderLinkerd:
		td := m.spec.TrustDomain
		if td == "" {
			td = "cluster.local"
		}
		o.CommonName, o.DNSNames, o.TrustDomain = "identity.linkerd."+td, []string{"identity.linkerd." + td}, ""
	case meshv1alpha1.ProviderCilium:
		o.CommonName = "meshplane-clustermesh-ca-" + m.spec.Name
	default:
		o.CommonName = "meshplane-intermediate-" + m.spec.Name
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

// distribute writes material to a member: the bundle ConfigMap first (so a
// new root is trusted before anything it signs arrives), then the issuer
// Secret. newIssuer is called only when the current intermediate cannot
// stay. Objects Meshplane did not create are never written.
func (r *Reconciler) distribute(ctx context.Context, fed *meshv1alpha1.MeshFederation, m *member,
	root *trust.CA, bundle *trust.Bundle, opts trust.IntermediateOptions, now time.Time) error {
	issuerRoot := root.Cert
	t := m.target
	labels := ownership.Labels(kind, "", fed.Name)
	sec, err := getSecret(ctx, m.client, t.Namespace, t.IssuerSecret)
	if err != nil {
		return fmt.Errorf("cluster %s: reading Secret %s/%s: %w", m.spec.Name, t.Namespace, t.IssuerSecret, err)
	}
	if err := checkOwned(m.spec.Name, sec, "Secret", fed.Name); err != nil {
		return err
	}
	var cm *corev1.ConfigMap
	if t.BundleConfigMap != "" {
		if cm, err = getConfigMap(ctx, m.client, t.Namespace, t.BundleConfigMap); err != nil {
			return fmt.Errorf("cluster %s: reading ConfigMap %s/%s: %w", m.spec.Name, t.Namespace, t.BundleConfigMap, err)
		}
		if err := checkOwned(m.spec.Name, cm, "ConfigMap", fed.Name); err != nil {
			return err
		}
	}
	issuer := reusable(sec, t, issuerRoot, opts, renewBefore(fed), now)
	if issuer == nil {
		if issuer, err = trust.IssueIntermediate(root, opts, now); err != nil {
			return err
		}
	}
	l := trust.LayoutFor(t, trust.Material{Issuer: issuer, IssuerRoot: issuerRoot, Bundle: bundle})
	if l.ConfigMap != nil {
		wrote, err := applyConfigMap(ctx, m.client, cm, t.Namespace, t.BundleConfigMap, labels, l.ConfigMap)
		if err != nil {
			return r.applyErr(m, err)
		}
		if wrote {
			m.wrote = true
			r.event(fed, corev1.EventTypeNormal, "BundleWritten", "Apply", "cluster %s: wrote trust bundle (%d roots) to ConfigMap %s/%s",
				m.spec.Name, len(bundle.Certs()), t.Namespace, t.BundleConfigMap)
		}
	}
	wrote, err := applySecret(ctx, m.client, sec, t.Namespace, t.IssuerSecret, labels, l.SecretType, l.Secret, nil)
	if err != nil {
		return r.applyErr(m, err)
	}
	if wrote {
		m.wrote = true
		r.event(fed, corev1.EventTypeNormal, "IssuerWritten", "Apply", "cluster %s: wrote intermediate %s (signed by root %s) to Secret %s/%s",
			m.spec.Name, trust.Fingerprint(issuer.Cert)[:12], trust.Fingerprint(issuerRoot)[:12], t.Namespace, t.IssuerSecret)
	}
	m.intermediate, m.bundle = issuer.Cert, bundle.Fingerprints()
	return nil
}

func (r *Reconciler) applyErr(m *member, err error) error {
	if apierrors.IsNotFound(err) {
		return &notFoundError{msg: fmt.Sprintf("cluster %s: namespace %s not found; install the %s control plane (or set the member's namespace) first: %v",
			m.spec.Name, m.target.Namespace, m.spec.Provider, err)}
	}
	return fmt.Errorf("cluster %s: %w", m.spec.Name, err)
}

// meshedPodSelectors are the pods whose certificates come from a mesh's
// CA: proxies and the control plane that loads the CA.
var meshedPodSelectors = map[meshv1alpha1.Provider][]struct {
	label     string
	value     string
	namespace bool // only in the mesh's namespace
}{
	meshv1alpha1.ProviderIstio: {
		{label: "security.istio.io/tlsMode"}, {label: "app", value: "istiod", namespace: true},
		{label: "app", value: "ztunnel", namespace: true}, {label: "istio.io/gateway-name"},
	},
	meshv1alpha1.ProviderLinkerd: {{label: "linkerd.io/control-plane-ns"}},
	meshv1alpha1.ProviderCilium: {
		{label: "k8s-app", value: "cilium", namespace: true}, {label: "k8s-app", value: "clustermesh-apiserver", namespace: true},
	},
}

// notRolled lists the member's meshed pods that started before since.
func notRolled(ctx context.Context, m *member, since time.Time) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, sel := range meshedPodSelectors[m.spec.Provider] {
		var pods corev1.PodList
		opts := []client.ListOption{}
		if sel.value == "" {
			opts = append(opts, client.HasLabels{sel.label})
		} else {
			opts = append(opts, client.MatchingLabels{sel.label: sel.value})
		}
		if sel.namespace {
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
