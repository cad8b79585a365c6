package canary

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/overlap"
)

// TemplateHashAnnotation on the primary Deployment records the hash of the
// canary pod template it was copied from.
const TemplateHashAnnotation = "meshplane.io/canary-template-hash"

// primarySuffix is appended to the primary's name and selector label values.
const primarySuffix = "-primary"

// names are the objects of one Canary.
type names struct {
	target, primary                string
	service, primarySvc, canarySvc string
	route                          string
}

func namesOf(cn *meshv1alpha1.Canary) names {
	svc := overlap.CanaryService(cn)
	return names{
		target: cn.Spec.TargetRef.Name, primary: cn.Spec.TargetRef.Name + primarySuffix,
		service: svc, primarySvc: svc + primarySuffix, canarySvc: svc + "-canary",
		route: cn.Name,
	}
}

// TemplateHash is the hash of a pod template: a different hash is a new
// revision.
func TemplateHash(t *corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// selectors returns the target's selector labels and the primary's (each
// value with -primary appended). A selector with matchExpressions, or a
// value too long for the suffix, is refused.
func selectors(d *appsv1.Deployment) (target, primary map[string]string, err error) {
	s := d.Spec.Selector
	if s == nil || len(s.MatchLabels) == 0 || len(s.MatchExpressions) > 0 {
		return nil, nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"Deployment %s selects pods with matchExpressions or no matchLabels; Meshplane derives the primary's selector from matchLabels only — select the pods with matchLabels", d.Name)
	}
	primary = make(map[string]string, len(s.MatchLabels))
	for k, v := range s.MatchLabels {
		pv := v + primarySuffix
		if msgs := validation.IsValidLabelValue(pv); len(msgs) > 0 {
			return nil, nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
				"Deployment %s's selector label %s=%s cannot take the -primary suffix (%s); shorten the value", d.Name, k, v, msgs[0])
		}
		primary[k] = pv
	}
	return maps.Clone(s.MatchLabels), primary, nil
}

// primaryTemplate is the target's pod template relabelled for the primary.
func primaryTemplate(t *corev1.PodTemplateSpec, primaryLabels map[string]string) corev1.PodTemplateSpec {
	out := *t.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, primaryLabels)
	return out
}

// primaryDeployment is the desired primary: the given template (the live
// primary's, or the canary's when promoting) with the primary's selector.
func primaryDeployment(cn *meshv1alpha1.Canary, n names, tmpl corev1.PodTemplateSpec, hash string, replicas int32, sel map[string]string, src *appsv1.Deployment) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: n.primary, Namespace: cn.Namespace,
			Annotations: map[string]string{TemplateHashAnnotation: hash}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: tmpl,
		},
	}
	if src != nil {
		d.Spec.Strategy = src.Spec.Strategy
		d.Spec.MinReadySeconds = src.Spec.MinReadySeconds
		d.Spec.ProgressDeadlineSeconds = src.Spec.ProgressDeadlineSeconds
		d.Spec.RevisionHistoryLimit = src.Spec.RevisionHistoryLimit
	}
	return d
}

func service(cn *meshv1alpha1.Canary, name string, sel map[string]string) *corev1.Service {
	s := cn.Spec.Service
	portName := s.PortName
	if portName == "" {
		portName = "http"
	}
	target := intstr.FromInt32(s.Port)
	if s.TargetPort != nil {
		target = *s.TargetPort
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cn.Namespace},
		Spec: corev1.ServiceSpec{
			Selector: sel,
			Ports:    []corev1.ServicePort{{Name: portName, Port: s.Port, TargetPort: target, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// trafficSplit is the in-memory TrafficSplit route r is translated from
// (delivery.Split).
func trafficSplit(cn *meshv1alpha1.Canary, n names, provider meshv1alpha1.Provider, r delivery.Route) *meshv1alpha1.TrafficSplit {
	return delivery.Split(cn, n.route, n.service, provider, r)
}
