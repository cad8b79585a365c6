package istio

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshplane/meshplane/internal/mesh"
)

func vsOf(http ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"http": http}}}
}

func dest(host string, weight any) map[string]any {
	d := map[string]any{"destination": map[string]any{"host": host}}
	if weight != nil {
		d["weight"] = weight
	}
	return d
}

func TestCanaryShare(t *testing.T) {
	for _, tc := range []struct {
		name     string
		u        *unstructured.Unstructured
		weight   int64
		mirrored bool
		notRoute bool
	}{
		{"weighted", vsOf(map[string]any{"route": []any{dest("web-primary", int64(80)), dest("web-canary", int64(20))}}), 20, false, false},
		{"an absent weight on the only destination is 100", vsOf(map[string]any{"route": []any{dest("web-canary", nil)}}), 100, false, false},
		{"an absent weight among several is 0", vsOf(map[string]any{"route": []any{dest("web-primary", nil), dest("web-canary", nil)}}), 0, false, false},
		{"highest over routes (A/B cohort)", vsOf(
			map[string]any{"route": []any{dest("web-canary", nil)}},
			map[string]any{"route": []any{dest("web-primary", int64(100)), dest("web-canary", int64(0))}}), 100, false, false},
		{"mirrored", vsOf(map[string]any{"route": []any{dest("web-primary", nil)}, "mirror": map[string]any{"host": "web-canary"}}), 0, true, false},
		{"a GAMMA HTTPRoute (output GatewayAPI)", &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
			"spec": map[string]any{"rules": []any{map[string]any{"backendRefs": []any{map[string]any{"name": "web-canary", "weight": int64(40)}}}}}}}, 40, false, false},
		{"a DestinationRule is not a route", &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule"}}, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, m, err := New().CanaryShare(tc.u, "web-canary")
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
