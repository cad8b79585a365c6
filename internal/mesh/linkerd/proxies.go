package linkerd

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh"
)

const (
	// ProxyContainer is the name of the container Linkerd's injector adds.
	ProxyContainer = "linkerd-proxy"
	// InboundDefaultPolicyEnv is the proxy's environment variable holding
	// the default inbound policy the injector resolved when the pod was
	// created (namespace or pod annotation, else the cluster default); the
	// proxy reads it once, at start (linkerd2 charts/partials _proxy.tpl).
	InboundDefaultPolicyEnv = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"
)

// StartupSetting is Linkerd's default inbound policy.
func (*Provider) StartupSetting() string { return "default inbound policy" }

// StartupValue is the namespace's default-inbound-policy annotation the
// outputs set.
func (*Provider) StartupValue(objs []client.Object) (string, bool) {
	for _, o := range objs {
		if ns, ok := o.(*corev1.Namespace); ok {
			v, set := ns.Annotations[DefaultInboundPolicyAnnotation]
			return v, set
		}
	}
	return "", false
}

// ProxyValue reads the default inbound policy the pod's proxy started
// with from its environment: exact, whenever the pod started (a pod that
// restarts gets a new injection). Pods without Linkerd's proxy, and pods
// that set the annotation themselves, are skipped.
func (*Provider) ProxyValue(pod *corev1.Pod) (string, bool) {
	if _, own := pod.Annotations[DefaultInboundPolicyAnnotation]; own {
		return "", false
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name != ProxyContainer {
			continue
		}
		for _, e := range c.Env {
			if e.Name == InboundDefaultPolicyEnv {
				return e.Value, true
			}
		}
	}
	return "", false
}

var _ mesh.StartupPolicy = (*Provider)(nil)
