package providers

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/scheme"
)

func kinds(objs []client.Object) []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetObjectKind().GroupVersionKind())
	}
	return out
}

// TestOutputKindsCoverTranslations checks the provider contract the
// controllers' watches rely on: every provider declares its output kinds
// (with TypeMeta, known to the scheme), every object a golden case
// translates to is of a declared kind (or a shared Namespace), and the
// registry aggregates them once each.
func TestOutputKindsCoverTranslations(t *testing.T) {
	reg := Registry()
	s := scheme.New()
	declared := map[meshv1alpha1.Provider][]schema.GroupVersionKind{}
	for _, p := range reg.Providers() {
		to, ok := p.(mesh.TrafficOutputs)
		po, ok2 := p.(mesh.PolicyOutputs)
		if !ok || !ok2 {
			t.Fatalf("%s declares no traffic or policy output kinds", p.Name())
		}
		all := append(to.TrafficOutputKinds(), po.PolicyOutputKinds()...)
		for _, o := range all {
			gvk := o.GetObjectKind().GroupVersionKind()
			if gvk.Kind == "" || !s.Recognizes(gvk) {
				t.Errorf("%s: output kind %T has GVK %v unknown to the scheme", p.Name(), o, gvk)
			}
		}
		declared[p.Name()] = kinds(all)
	}
	for _, tr := range translateAll(t) {
		p := meshv1alpha1.Provider("")
		for _, name := range reg.Names() {
			if strings.HasSuffix(tr.golden, "."+strings.ToLower(string(name))) {
				p = name
			}
		}
		for _, o := range tr.objs {
			u, err := apply.ToUnstructured(o, s)
			if err != nil {
				t.Fatal(err)
			}
			gvk := u.GroupVersionKind()
			if gvk.Kind == "Namespace" && gvk.Group == "" {
				continue // a shared field, not an owned output
			}
			if !slices.Contains(declared[p], gvk) {
				t.Errorf("%s: %v is not among %s's output kinds %v", tr.golden, gvk, p, declared[p])
			}
		}
	}
	traffic := kinds(reg.TrafficOutputKinds())
	policy := kinds(reg.PolicyOutputKinds())
	for _, list := range [][]schema.GroupVersionKind{traffic, policy} {
		for i, k := range list {
			if slices.Contains(list[i+1:], k) {
				t.Errorf("%v listed twice: %v", k, list)
			}
		}
	}
	if len(traffic) != 2 || len(policy) != 9 { // policy: 8 + Istio's RequestAuthentication (spec.jwt)
		t.Errorf("traffic kinds %v, policy kinds %v", traffic, policy)
	}
}

// TestRoutesReadBack reads every golden traffic output back with its
// mesh's RouteReader and with the registry's: the default backends' share
// is the translated weight.
func TestRoutesReadBack(t *testing.T) {
	reg := Registry()
	for _, tr := range translateAll(t) {
		if !strings.HasPrefix(tr.golden, "ts-") || tr.err != nil || strings.Contains(tr.golden, "rules") {
			continue
		}
		name := meshv1alpha1.Provider("")
		for _, n := range reg.Names() {
			if strings.HasSuffix(tr.golden, "."+strings.ToLower(string(n))) {
				name = n
			}
		}
		rr, err := reg.RouteReader(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			u, err := apply.ToUnstructured(o, scheme.New())
			if err != nil {
				t.Fatal(err)
			}
			w, _, err := rr.CanaryShare(u, "web-v2")
			if err != nil {
				t.Fatalf("%s: %v", tr.golden, err)
			}
			rw, _, rerr := reg.CanaryShare(u, "web-v2")
			if rerr != nil || rw != w {
				t.Errorf("%s: registry read %d (%v), the mesh's reader %d", tr.golden, rw, rerr, w)
			}
			if w < 10 {
				t.Errorf("%s: web-v2's share %d, want at least its default weight 10", tr.golden, w)
			}
		}
	}
	_, _, err := reg.CanaryShare(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service"}}, "web")
	if !errors.Is(err, mesh.ErrNotARoute) {
		t.Fatalf("a Service read as a route: %v", err)
	}
}
