package gamma

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshplane/meshplane/internal/mesh"
)

func route(rules ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"rules": rules}}}
}

func backend(name string, weight any) map[string]any {
	b := map[string]any{"name": name}
	if weight != nil {
		b["weight"] = weight
	}
	return b
}

func TestCanaryShare(t *testing.T) {
	mirror := map[string]any{"type": "RequestMirror", "requestMirror": map[string]any{"backendRef": map[string]any{"name": "web-canary"}}}
	for _, tc := range []struct {
		name     string
		u        *unstructured.Unstructured
		weight   int64
		mirrored bool
		notRoute bool
	}{
		{"weighted", route(map[string]any{"backendRefs": []any{backend("web-primary", int64(70)), backend("web-canary", int64(30))}}), 30, false, false},
		{"float weights (JSON)", route(map[string]any{"backendRefs": []any{backend("web-primary", 50.0), backend("web-canary", 50.0)}}), 50, false, false},
		{"absent weight is Gateway API's default 1", route(map[string]any{"backendRefs": []any{backend("web-canary", nil)}}), 1, false, false},
		{"highest over rules (A/B cohort)", route(
			map[string]any{"backendRefs": []any{backend("web-canary", int64(100))}},
			map[string]any{"backendRefs": []any{backend("web-primary", int64(100)), backend("web-canary", int64(0))}}), 100, false, false},
		{"mirrored", route(map[string]any{"backendRefs": []any{backend("web-primary", int64(100))}, "filters": []any{mirror}}), 0, true, false},
		{"not routed", route(map[string]any{"backendRefs": []any{backend("web-primary", int64(100))}}), 0, false, false},
		{"Linkerd's policy HTTPRoute is not a GAMMA route", &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "policy.linkerd.io/v1beta3", "kind": "HTTPRoute"}}, 0, false, true},
		{"a VirtualService is not", &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"}}, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, m, err := CanaryShare(tc.u, "web-canary")
			if tc.notRoute {
				if !errors.Is(err, mesh.ErrNotARoute) {
					t.Fatalf("error %v, want ErrNotARoute", err)
				}
				return
			}
			if err != nil || w != tc.weight || m != tc.mirrored {
				t.Fatalf("got weight %d mirrored %v err %v, want %d %v", w, m, err, tc.weight, tc.mirrored)
			}
		})
	}
}

func TestWeight(t *testing.T) {
	for _, tc := range []struct {
		v    any
		n    int
		want int64
	}{{int64(7), 2, 7}, {7.0, 2, 7}, {int32(7), 2, 7}, {7, 2, 7}, {nil, 1, 100}, {nil, 2, 0}, {"x", 1, 0}} {
		if got := Weight(tc.v, tc.n); got != tc.want {
			t.Errorf("Weight(%v, %d) = %d, want %d", tc.v, tc.n, got, tc.want)
		}
	}
}
