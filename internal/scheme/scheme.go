// Package scheme builds the runtime.Scheme shared by the manager, the tests
// and the tools: Kubernetes' built-in types, Meshplane's API and the typed
// APIs of the meshes Meshplane writes to (Istio, Gateway API, Cilium,
// Linkerd).
package scheme

import (
	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	linkerdlink "github.com/linkerd/linkerd2/controller/gen/apis/link/v1alpha3"
	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	linkerdsp "github.com/linkerd/linkerd2/controller/gen/apis/serviceprofile/v1alpha2"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	linkerdpolicy "github.com/meshplane/meshplane/internal/mesh/linkerd"
)

// New returns a scheme with every API group Meshplane reads or writes.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		meshv1alpha1.AddToScheme,
		apiextensionsv1.AddToScheme,
		istionetworking.AddToScheme,
		istiosecurity.AddToScheme,
		istiotelemetry.AddToScheme,
		gatewayv1.Install,
		gatewayv1beta1.Install,
		ciliumv2.AddToScheme,
		linkerdserver.AddToScheme,
		linkerdsp.AddToScheme,
		linkerdlink.AddToScheme,
		linkerdpolicy.AddToScheme,
	} {
		utilruntime.Must(add(s))
	}
	return s
}
