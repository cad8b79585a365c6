package mesh

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// ResilienceTable renders, for every field of a ResiliencePolicy, each
// registered mesh's answer in scope (DefaultScope when scope is nil) as a
// Markdown table: "✓ what it becomes" or "— why not".
func ResilienceTable(r *Registry, scope func(meshv1alpha1.Provider) Scope) string {
	var ps []ResilienceSupporter
	for _, p := range r.Providers() {
		if s, ok := p.(ResilienceSupporter); ok {
			ps = append(ps, s)
		}
	}
	if scope == nil {
		scope = DefaultScope
	}
	var b strings.Builder
	b.WriteString("| Field |")
	for _, p := range ps {
		fmt.Fprintf(&b, " %s |", p.Name())
	}
	b.WriteString("\n|---|")
	for range ps {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, f := range ResilienceFields {
		fmt.Fprintf(&b, "| `%s` |", f)
		for _, p := range ps {
			sup := p.ResilienceSupport(scope(p.Name()), f)
			mark := "—"
			if sup.Enforced {
				mark = "✓"
			}
			fmt.Fprintf(&b, " %s %s |", mark, strings.ReplaceAll(sup.Detail, "|", "\\|"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
