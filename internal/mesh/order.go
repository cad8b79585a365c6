package mesh

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// RuleOrderConflict reports, as a message, the first pair of rules whose
// order Gateway API would not keep: a later rule with a match that is more
// specific than (Gateway API evaluates it first) and may overlap with a
// match of an earlier rule. It returns "" when list order and Gateway API's
// precedence agree.
//
// Gateway API's precedence is: exact path, then the longest path prefix,
// then a method match, then the number of header matches. Matches that
// cannot select the same request (different exact paths, methods or exact
// header values) never conflict.
func RuleOrderConflict(rules []meshv1alpha1.TrafficRule) string {
	for i := range rules {
		for j := i + 1; j < len(rules); j++ {
			for _, a := range rules[i].Matches {
				for _, b := range rules[j].Matches {
					if precedes(b, a) && mayOverlap(a, b) {
						return fmt.Sprintf("rule %s would be evaluated before rule %s", ruleName(rules[j], j), ruleName(rules[i], i))
					}
				}
			}
		}
	}
	return ""
}

func ruleName(r meshv1alpha1.TrafficRule, i int) string {
	if r.Name != "" {
		return fmt.Sprintf("%q (spec.rules[%d])", r.Name, i)
	}
	return fmt.Sprintf("spec.rules[%d]", i)
}

type precedence struct {
	exact     bool
	prefixLen int
	method    bool
	headers   int
}

func keyOf(m meshv1alpha1.HTTPMatch) precedence {
	k := precedence{prefixLen: 1, method: m.Method != "", headers: len(m.Headers)}
	if m.Path != nil {
		k.exact = m.Path.Type == meshv1alpha1.PathMatchExact
		k.prefixLen = len(m.Path.Value)
	}
	return k
}

// precedes reports whether Gateway API ranks b strictly before a.
func precedes(b, a meshv1alpha1.HTTPMatch) bool {
	kb, ka := keyOf(b), keyOf(a)
	if kb.exact != ka.exact {
		return kb.exact
	}
	if kb.prefixLen != ka.prefixLen {
		return kb.prefixLen > ka.prefixLen
	}
	if kb.method != ka.method {
		return kb.method
	}
	return kb.headers > ka.headers
}

func pathOf(m meshv1alpha1.HTTPMatch) (string, bool) {
	if m.Path == nil {
		return "/", false
	}
	return m.Path.Value, m.Path.Type == meshv1alpha1.PathMatchExact
}

// prefixCovers reports whether path prefix p (segment-wise) matches path v.
func prefixCovers(p, v string) bool {
	p = strings.TrimSuffix(p, "/")
	return p == "" || v == p || strings.HasPrefix(v, p+"/")
}

func mayOverlap(a, b meshv1alpha1.HTTPMatch) bool {
	pa, ea := pathOf(a)
	pb, eb := pathOf(b)
	switch {
	case ea && eb && pa != pb:
		return false
	case ea && !eb && !prefixCovers(pb, pa):
		return false
	case !ea && eb && !prefixCovers(pa, pb):
		return false
	case !ea && !eb && !prefixCovers(pa, pb) && !prefixCovers(pb, pa):
		return false
	}
	if a.Method != "" && b.Method != "" && a.Method != b.Method {
		return false
	}
	for _, ha := range a.Headers {
		for _, hb := range b.Headers {
			if strings.EqualFold(ha.Name, hb.Name) && isExact(ha) && isExact(hb) && ha.Value != hb.Value {
				return false
			}
		}
	}
	return true
}

func isExact(h meshv1alpha1.HTTPHeaderMatch) bool {
	return h.Type == "" || h.Type == meshv1alpha1.HeaderMatchExact
}
