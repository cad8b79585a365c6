package mesh

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// StartupPolicy is implemented by meshes whose proxies read part of a
// policy only when they start (Linkerd's default inbound policy): running
// pods keep the value they started with until they restart.
type StartupPolicy interface {
	// StartupSetting names the setting for messages, e.g. "default inbound
	// policy".
	StartupSetting() string
	// StartupValue returns the value a policy's outputs set, ok false when
	// they set none.
	StartupValue(objs []client.Object) (value string, ok bool)
	// ProxyValue returns the value pod's proxy started with; ok false when
	// the pod has no proxy, or sets the value itself (then the namespace's
	// does not apply to it).
	ProxyValue(pod *corev1.Pod) (value string, ok bool)
}

// StartupPolicy returns the named provider's StartupPolicy, false when its
// proxies read policies live.
func (r *Registry) StartupPolicy(name meshv1alpha1.Provider) (StartupPolicy, bool) {
	p, err := r.Get(name)
	if err != nil {
		return nil, false
	}
	s, ok := p.(StartupPolicy)
	return s, ok
}
