package mesh

import (
	"k8s.io/apimachinery/pkg/types"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// EgressGatewayServiceNamer is implemented by egress translators that
// route an EgressPolicy through an egress gateway the user deploys (Istio
// in sidecar namespaces). The controller refuses the policy, naming the
// Service, while that Service does not exist: the translation stays pure.
type EgressGatewayServiceNamer interface {
	// EgressGatewayService returns the egress gateway's Service p routes
	// through in a namespace with facts f; ok is false when it routes
	// through none.
	EgressGatewayService(p *meshv1alpha1.EgressPolicy, f NamespaceFacts) (svc types.NamespacedName, ok bool)
}
