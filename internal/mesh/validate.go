package mesh

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// This file is the one validation of a TrafficSplit's and a
// ZeroTrustPolicy's input that the schema (OpenAPI + CEL) cannot express,
// run by every provider before it translates anything, whatever the output
// kind: the same input is refused the same way on every mesh. It also
// checks the outputs of every translation for what Kubernetes refuses of
// any object (names, label values) and for two outputs sharing a name,
// which would silently drop one of them.

// DefaultRuleName names the route rule that carries spec.backends; a
// TrafficSplit rule may not use it.
const DefaultRuleName = "default"

// CapUDPRouting is routing of UDP traffic, which no mesh's HTTP routing
// expresses: a TrafficSplit on a UDP port is refused with it.
const CapUDPRouting Capability = "UDPRouting"

// ValidateTrafficSplit checks what every translation of ts relies on: no
// rule named like the default rule, header matches that are valid
// whatever the output (one name per match, case-insensitively; values
// without control characters; RE2 regular expressions) and paths that
// Gateway API would accept. The error is terminal (InvalidSpec) and names
// the field, the value and the fix.
func ValidateTrafficSplit(ts *meshv1alpha1.TrafficSplit) error {
	for i, r := range ts.Spec.Rules {
		if r.Name == DefaultRuleName {
			return invalid("spec.rules[%d].name: %q is reserved for the rule that carries spec.backends; rename the rule", i, r.Name)
		}
		for j, m := range r.Matches {
			if err := ValidateMatch(fmt.Sprintf("spec.rules[%d].matches[%d]", i, j), m); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidateMatch checks one HTTP match at field path at (see
// ValidateTrafficSplit).
func ValidateMatch(at string, m meshv1alpha1.HTTPMatch) error {
	seen := map[string]int{}
	for k, h := range m.Headers {
		f := fmt.Sprintf("%s.headers[%d]", at, k)
		if prev, dup := seen[strings.ToLower(h.Name)]; dup {
			return invalid("%s.name: %q is the same header as %s.headers[%d].name %q (header names are case-insensitive, and a mesh keeps only one of them); "+
				"put both conditions in one header match, or in two matches to OR them", f, h.Name, at, prev, m.Headers[prev].Name)
		}
		seen[strings.ToLower(h.Name)] = k
		if i := strings.IndexFunc(h.Value, isControl); i >= 0 {
			return invalid("%s.value: %q contains the control character %U at byte %d; an HTTP header value cannot contain CR, LF or other control characters — remove it",
				f, h.Value, h.Value[i], i)
		}
		if h.Type == meshv1alpha1.HeaderMatchRegularExpression {
			if _, err := regexp.Compile(h.Value); err != nil {
				return invalid("%s.value: %q is not an RE2 regular expression (%v); fix the expression", f, h.Value, err)
			}
		}
	}
	if m.Path != nil {
		if err := ValidPath(m.Path.Value); err != nil {
			return invalid("%s.path.value: %v", at, err)
		}
	}
	return nil
}

func isControl(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }

var pathChars = regexp.MustCompile(`^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$`)

// ValidPath applies Gateway API's rules for Exact and PathPrefix values, to
// every output: a path the HTTPRoute schema would refuse is refused
// whatever the mesh, before anything is applied. The error names the
// value and what to change.
func ValidPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q must start with /", p)
	case strings.Contains(p, "//"), strings.Contains(p, "/./"), strings.Contains(p, "/../"),
		strings.Contains(p, "%2f"), strings.Contains(p, "%2F"), strings.Contains(p, "#"),
		strings.HasSuffix(p, "/.."), strings.HasSuffix(p, "/."):
		return fmt.Errorf("path %q must not contain //, /./, /../, %%2f or # nor end with /. or /.. (proxies normalize such paths, so the match would not see them); use the normalized path", p)
	case !pathChars.MatchString(p):
		return fmt.Errorf("path %q contains characters not allowed in a URL path; percent-encode them", p)
	}
	return nil
}

// ValidateZeroTrustPolicy checks what every translation of p relies on: a
// selector Kubernetes accepts, rule names that give distinct output names
// (PolicyRuleName), and paths that are either exact or a prefix ending in
// "*" and that proxies do not normalize away. The error is terminal
// (InvalidSpec).
func ValidateZeroTrustPolicy(p *meshv1alpha1.ZeroTrustPolicy) error {
	if s := p.Spec.Selector; s != nil {
		errs := metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, field.NewPath("spec", "selector"))
		if len(errs) > 0 {
			return invalid("%s; fix the selector", errs[0].Error())
		}
	}
	names := map[string]int{}
	for i, r := range p.Spec.Rules {
		n := PolicyRuleName(i, r)
		if prev, dup := names[n]; dup {
			what := "the name of"
			if p.Spec.Rules[prev].Name == "" {
				what = "the name Meshplane gives the unnamed"
			}
			return invalid("spec.rules[%d]: its name %q is also %s spec.rules[%d], and the outputs of both would share names; give each rule a distinct name", i, n, what, prev)
		}
		names[n] = i
		for j, t := range r.To {
			for k, path := range t.Paths {
				if err := validPolicyPath(path); err != nil {
					return invalid("spec.rules[%d].to[%d].paths[%d]: %v", i, j, k, err)
				}
			}
		}
	}
	return nil
}

func validPolicyPath(p string) error {
	v, _ := strings.CutSuffix(p, "*")
	if strings.Contains(v, "*") {
		return fmt.Errorf("path %q: * is only allowed at the end (a prefix match); meshes disagree on a * elsewhere — remove it", p)
	}
	return ValidPath(v)
}

// PolicyRuleName is the name of rule i of a ZeroTrustPolicy in its outputs'
// names: its name, or r<i> when it has none.
func PolicyRuleName(i int, r meshv1alpha1.AllowRule) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("r%d", i)
}

// CheckOutputs refuses a translation whose outputs Kubernetes would refuse
// for their names or labels, or two of which share kind, namespace and
// name (one would silently replace the other). owner names the translated
// object in the message. Every provider runs it on what it returns.
func CheckOutputs(owner string, objs []client.Object) error {
	seen := map[string]bool{}
	for _, o := range objs {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		key := o.GetObjectKind().GroupVersionKind().GroupKind().String() + "/" + o.GetNamespace() + "/" + o.GetName()
		if seen[key] {
			return invalid("two outputs of %s are both %s %s; give the rules distinct names", owner, kind, o.GetName())
		}
		seen[key] = true
		if n := len(o.GetName()); n > validation.DNS1123SubdomainMaxLength {
			return invalid("output %s %q would be %d characters, over Kubernetes' limit of %d for a name; shorten metadata.name of %s (or its rule names) by at least %d characters",
				kind, o.GetName(), n, validation.DNS1123SubdomainMaxLength, owner, n-validation.DNS1123SubdomainMaxLength)
		}
		if msgs := validation.IsDNS1123Subdomain(o.GetName()); len(msgs) > 0 {
			return invalid("output %s %q is not a valid name (%s); rename %s or its rules", kind, o.GetName(), msgs[0], owner)
		}
		for k, v := range o.GetLabels() {
			if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
				return invalid("output %s %s: label %s=%q is not a valid label value (%s; at most %d characters); shorten the value it is derived from",
					kind, o.GetName(), k, v, msgs[0], validation.LabelValueMaxLength)
			}
		}
	}
	return nil
}

// CheckServicePort refuses routing a Service port that carries no TCP
// (UDP or SCTP only): every mesh's HTTP routing (VirtualService http,
// HTTPRoute) would silently apply to nothing. field names the spec field
// that chose the port.
func CheckServicePort(provider meshv1alpha1.Provider, field string, svc *corev1.Service, port int32) error {
	var protocols []string
	for _, p := range svc.Spec.Ports {
		if p.Port != port {
			continue
		}
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			return nil
		}
		protocols = append(protocols, string(p.Protocol))
	}
	if len(protocols) == 0 {
		return nil
	}
	return &UnsupportedFeatureError{Provider: provider, Features: []Capability{CapUDPRouting},
		Detail: fmt.Sprintf("%s: port %d of Service %s is %s only, and a TrafficSplit routes HTTP over TCP (no mesh splits %s by weight); choose a TCP port",
			field, port, svc.Name, strings.Join(protocols, "/"), strings.Join(protocols, "/"))}
}

func invalid(format string, args ...any) error {
	return outcome.Stalled(meshv1alpha1.InvalidSpecReason, format, args...)
}
