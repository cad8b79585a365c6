package linkerd

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// AuditPolicy is Linkerd's audit default policy: every request is allowed,
// and those no authorization covers are reported as would-be denials
// (https://linkerd.io/2-edge/reference/authorization-policy/#default-policies).
const AuditPolicy = "audit"

// audited turns pol's outputs into their audit form when pol runs in
// audit: the namespace's default-inbound-policy and every Server's
// accessPolicy are audit. The authorizations stay, so allowed traffic is
// reported as authorized.
func audited(pol *meshv1alpha1.ZeroTrustPolicy, objs []client.Object) []client.Object {
	if !mesh.Audit(&pol.Spec) {
		return objs
	}
	for _, o := range objs {
		switch x := o.(type) {
		case *corev1.Namespace:
			x.Annotations[DefaultInboundPolicyAnnotation] = AuditPolicy
		case *linkerdserver.Server:
			x.Spec.AccessPolicy = AuditPolicy
		}
	}
	return objs
}
