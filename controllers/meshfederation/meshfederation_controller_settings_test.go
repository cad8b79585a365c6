package meshfederation

import "testing"

// TestHoldsValue: the settings are held when every value is there; items
// another manager added to a list beside them do not count.
func TestHoldsValue(t *testing.T) {
	want := map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"gateway": true, "links": []any{"east"}}}}
	for _, tc := range []struct {
		name string
		live any
		ok   bool
	}{
		{"exactly", map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"gateway": true, "links": []any{"east"}}}}, true},
		{"another manager's link beside ours", map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"gateway": true, "links": []any{"east", "far"}}}}, true},
		{"the user's other fields", map[string]any{"version": "x", "linkerd": map[string]any{"highAvailability": true, "multicluster": map[string]any{"gateway": true, "links": []any{"east"}}}}, true},
		{"our link missing", map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"gateway": true, "links": []any{"far"}}}}, false},
		{"gateway differs", map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"gateway": false, "links": []any{"east"}}}}, false},
		{"no settings", map[string]any{"linkerd": map[string]any{}}, false},
		{"no linkerd", map[string]any{}, false},
	} {
		if got := holdsValue(tc.live, want); got != tc.ok {
			t.Errorf("%s: holds %t, want %t", tc.name, got, tc.ok)
		}
	}
	peers := map[string]any{"peers": []any{map[string]any{"name": "a", "port": 2379.0}}}
	if !holdsValue(map[string]any{"peers": []any{map[string]any{"name": "b"}, map[string]any{"name": "a", "port": 2379.0}}}, peers) {
		t.Error("a peer held among others")
	}
	if holdsValue(map[string]any{"peers": []any{map[string]any{"name": "a", "port": 2380.0}}}, peers) {
		t.Error("a peer with another port")
	}
	if !holdsValue(map[string]any{}, map[string]any{"links": []any{}}) {
		t.Error("an empty list is held by an absent one")
	}
	if settingsDigest(want) != settingsDigest(map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"links": []any{"east"}, "gateway": true}}}) {
		t.Error("the digest depends on map order")
	}
}
