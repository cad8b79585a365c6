package meshfederation

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
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
	state   *corev1.Secret
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
		s, err := getSecret(ctx, r.Local, ns, ref.Name)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
				"root Secret %s/%s not found; create it with tls.crt and tls.key (a cert-manager CA Certificate's Secret works as it is)", ns, ref.Name)
		}
		ca, err := trust.ParseCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], now)
		if err != nil {
			return nil, outcome.Stalled(meshv1alpha1.InvalidCertificateReason,
				"root Secret %s/%s: %v; nothing already distributed was changed", ns, ref.Name, err)
		}
		rt.supplied = ca
	}
	state, err := getSecret(ctx, r.Local, ns, name)
	if err != nil {
		return nil, err
	}
	if err := checkOwned("local", state, "Secret", fed.Name); err != nil {
		return nil, outcome.Stalled(meshv1alpha1.ConflictReason, "%v", err)
	}
	rt.state = state
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

// writeRoots applies the state Secret with rt.current and rt.next.
func (r *Reconciler) writeRoots(ctx context.Context, fed *meshv1alpha1.MeshFederation, rt *roots) error {
	data := map[string][]byte{rootCertKey: rt.current.CertPEM, rootKeyKey: rt.current.KeyPEM}
	var absent []string
	if rt.next != nil {
		data[nextCertKey], data[nextKeyKey] = rt.next.CertPEM, rt.next.KeyPEM
	} else {
		absent = []string{nextCertKey, nextKeyKey}
	}
	ns, name := r.OperatorNamespace, CASecretName(fed.Name)
	wrote, err := applySecret(ctx, r.Local, rt.state, ns, name, ownership.Labels(kind, "", fed.Name), corev1.SecretTypeOpaque, data, absent)
	if err != nil {
		return err
	}
	if wrote {
		r.event(fed, corev1.EventTypeNormal, "RootStored", "Apply", "stored the root CA state in Secret %s/%s", ns, name)
		rt.state = &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: data}
		rt.state.Name, rt.state.Namespace, rt.state.Labels = name, ns, ownership.Labels(kind, "", fed.Name)
	}
	return nil
}
