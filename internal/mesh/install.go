package mesh

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
)

// The interfaces below are the optional parts of installing a mesh. The
// MeshInstall controller asks an Installer for them with a type assertion:
// a mesh that does not implement one has nothing of that kind to do.

// RBAC for the objects the meshes' charts contain, whatever the mesh:
// installing with Helm creates them, and charts grant their control planes
// permissions the operator does not hold itself, hence escalate and bind
// on RBAC objects. CRDs can be created and updated, never deleted. The
// kinds only one mesh's charts contain are in that mesh's package.
//
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets;statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings;roles;rolebindings,verbs=get;list;watch;create;update;patch;delete;escalate;bind
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apiregistration.k8s.io,resources=apiservices,verbs=get;list;watch;create;update;patch;delete

// ControlPlaneLabeler is implemented by meshes whose control-plane
// namespace needs labels before the charts are installed (Linkerd's
// webhooks skip the namespaces so labelled).
type ControlPlaneLabeler interface {
	// ControlPlaneLabels returns the labels of control-plane namespace ns.
	ControlPlaneLabels(ns string) map[string]string
}

// NodeDataPlane is implemented by meshes whose data plane is part of the
// control plane's own rollout (Cilium's agent DaemonSet): an in-place
// upgrade is complete once the control plane is healthy, and no namespace
// is restarted.
type NodeDataPlane interface {
	// DataPlaneUpgraded says how the data plane was upgraded, for the
	// upgrade's status message.
	DataPlaneUpgraded() string
}

// TagWriter is where revision-tag operations read and write, and whose
// tags they are.
type TagWriter struct {
	// Reader reads the injector webhooks (the manager's cache).
	Reader client.Reader
	// Applier writes the tag webhooks (the only writer of outputs).
	Applier *apply.Applier
	// Owner is the MeshInstall or MeshRevision whose tags they are.
	Owner apply.Owner
	// Adopt takes over a tag webhook Meshplane did not create
	// (spec.adopt), instead of reporting a Conflict.
	Adopt bool
	// Held, when set, is told about a cluster-wide singleton (Istio's
	// istiod-default-validator) that another owner holds and that was
	// therefore left as it is: its name and who holds it.
	Held func(name, holder string)
}

// Revisioner is implemented by meshes that run control-plane revisions side
// by side (Istio): a RevisionBased MeshInstall and every MeshRevision need
// one. A MeshInstall of another mesh upgrades in place whatever its
// strategy says.
type Revisioner interface {
	Installer
	// RevisionChart is the chart installed once per revision (istiod);
	// the others are shared by every revision.
	RevisionChart() string
	// InstallRevision is the revision an install names for its first (or
	// only, in place) control plane; empty for the default.
	InstallRevision(mi *meshv1alpha1.MeshInstall) string
	// RevisionName turns a version into a revision name.
	RevisionName(version string) string
	// DefaultTag is the revision tag a RevisionBased upgrade moves.
	DefaultTag(mi *meshv1alpha1.MeshInstall) string
	// RevisionLabel is the namespace and pod label that selects (and on
	// pods, records) a revision.
	RevisionLabel() string
	// InMigration reports whether a namespace with these labels moves in a
	// migration from one revision to another while tag is the tag being
	// moved: it selects either revision or the tag.
	InMigration(labels map[string]string, tag, from, to string) bool
	// SelectsRevision reports whether a namespace's membership selects
	// revision (empty: the default revision).
	SelectsRevision(m Membership, revision string) bool
	// EnsureTag points tag at revision, whose injector runs in namespace.
	// It waits (outcome.Wait) for the injector and reports a tag webhook
	// Meshplane did not create as a Conflict unless w.Adopt.
	EnsureTag(ctx context.Context, w TagWriter, tag, revision, namespace string) (apply.Result, error)
	// EnsureDefaultValidator makes an in-place install's control plane
	// (revision, in namespace) validate the mesh's objects that name no
	// revision, unless another owner already does (then w.Held is told).
	EnsureDefaultValidator(ctx context.Context, w TagWriter, revision, namespace string) (apply.Result, error)
	// PruneTags deletes the owner's tag webhooks whose tag is not in keep.
	PruneTags(ctx context.Context, w TagWriter, keep []string) (apply.ChangeSet, error)
}

// IdentitySpec is what a MeshInstall asks of its mesh's identity.
type IdentitySpec struct {
	// Field is the spec path messages name, e.g. spec.linkerd.identity.
	Field string
	// External takes the trust bundle a MeshFederation writes and leaves
	// the issuer to it.
	External bool
	// TrustAnchorRef and IssuerRef name Secrets in the operator namespace
	// holding the user's trust anchor and issuer; nil to generate them.
	TrustAnchorRef, IssuerRef *meshv1alpha1.SecretKeyReference
	// IssuerLifetime of a generated issuer; 0 for the default.
	IssuerLifetime time.Duration
	// AnchorName and IssuerName are the subject common names of a
	// generated anchor and issuer.
	AnchorName, IssuerName string
}

// IdentityInstaller is implemented by meshes whose charts take a trust
// anchor and issuer that Meshplane generates, reads from Secrets, or takes
// from a MeshFederation (Linkerd). Where a MeshFederation writes the
// bundle is the mesh's TrustTarget.
type IdentityInstaller interface {
	Installer
	TrustWriter
	// IdentitySpec reads what mi asks for.
	IdentitySpec(mi *meshv1alpha1.MeshInstall) IdentitySpec
}

// Revisioner returns the named provider's Revisioner.
func (r *Registry) Revisioner(name meshv1alpha1.Provider) (Revisioner, error) {
	return lookup[Revisioner](r, name, "control-plane revisions (MeshRevision)")
}
