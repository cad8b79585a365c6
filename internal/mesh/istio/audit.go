package istio

import (
	securityv1beta1 "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// DryRunAnnotation on an AuthorizationPolicy makes the sidecar evaluate it
// without enforcing it, reporting the would-be result in its access log
// and metrics (https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/).
const DryRunAnnotation = "istio.io/dry-run"

// audited turns pol's outputs into their audit form when pol runs in
// audit: every AuthorizationPolicy carries DryRunAnnotation, and mTLS is
// PERMISSIVE, because STRICT would refuse plain-text callers, which is
// enforcement.
func audited(pol *meshv1alpha1.ZeroTrustPolicy, objs []client.Object) []client.Object {
	if !mesh.Audit(&pol.Spec) {
		return objs
	}
	for _, o := range objs {
		switch x := o.(type) {
		case *istiosecurity.AuthorizationPolicy:
			metav1.SetMetaDataAnnotation(&x.ObjectMeta, DryRunAnnotation, "true")
		case *istiosecurity.PeerAuthentication:
			x.Spec.Mtls = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE}
		}
	}
	return objs
}

// refuseAmbientAudit refuses audit in an ambient namespace: ztunnel's
// handling of istio.io/dry-run depends on its version (older ztunnels
// enforce such a policy, later ones ignore it, the newest report it), and
// the translation cannot tell which one runs.
func refuseAmbientAudit(f mesh.NamespaceFacts) error {
	return refuseAmbient("spec.enforcement is Audit but namespace %s is ambient, where ztunnel enforces, ignores or reports an istio.io/dry-run "+
		"AuthorizationPolicy depending on its version, so audit cannot be guaranteed to block nothing; run the policy in audit while the "+
		"namespace is in sidecar mode, or set spec.enforcement to Enforce (nothing was applied)", f.Name)
}
