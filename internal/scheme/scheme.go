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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

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
		ciliumTypes,
		linkerdserver.AddToScheme,
		linkerdsp.AddToScheme,
		linkerdlink.AddToScheme,
		linkerdpolicy.AddToScheme,
		mcsv1beta1.Install,
	} {
		utilruntime.Must(add(s))
	}
	return s
}

// ciliumTypes registers Cilium's cilium.io/v2 kinds except
// CiliumEnvoyConfig and CiliumClusterwideEnvoyConfig: their typed form
// decodes Envoy resources with protojson, which fails on every Envoy type
// not linked into Meshplane (Cilium's own generated configs use many), and
// one such object would fail a whole List. Meshplane reads and writes them
// unstructured.
func ciliumTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(ciliumv2.SchemeGroupVersion,
		&ciliumv2.CiliumNetworkPolicy{}, &ciliumv2.CiliumNetworkPolicyList{},
		&ciliumv2.CiliumClusterwideNetworkPolicy{}, &ciliumv2.CiliumClusterwideNetworkPolicyList{},
		&ciliumv2.CiliumCIDRGroup{}, &ciliumv2.CiliumCIDRGroupList{},
		&ciliumv2.CiliumEgressGatewayPolicy{}, &ciliumv2.CiliumEgressGatewayPolicyList{},
		&ciliumv2.CiliumEndpoint{}, &ciliumv2.CiliumEndpointList{},
		&ciliumv2.CiliumNode{}, &ciliumv2.CiliumNodeList{},
		&ciliumv2.CiliumNodeConfig{}, &ciliumv2.CiliumNodeConfigList{},
		&ciliumv2.CiliumIdentity{}, &ciliumv2.CiliumIdentityList{},
		&ciliumv2.CiliumLocalRedirectPolicy{}, &ciliumv2.CiliumLocalRedirectPolicyList{},
		&ciliumv2.CiliumBGPClusterConfig{}, &ciliumv2.CiliumBGPClusterConfigList{},
		&ciliumv2.CiliumBGPPeerConfig{}, &ciliumv2.CiliumBGPPeerConfigList{},
		&ciliumv2.CiliumBGPAdvertisement{}, &ciliumv2.CiliumBGPAdvertisementList{},
		&ciliumv2.CiliumBGPNodeConfig{}, &ciliumv2.CiliumBGPNodeConfigList{},
		&ciliumv2.CiliumBGPNodeConfigOverride{}, &ciliumv2.CiliumBGPNodeConfigOverrideList{},
		&ciliumv2.CiliumLoadBalancerIPPool{}, &ciliumv2.CiliumLoadBalancerIPPoolList{},
	)
	metav1.AddToGroupVersion(s, ciliumv2.SchemeGroupVersion)
	return nil
}
