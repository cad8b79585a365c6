package apply

import (
	"encoding/json"
	"strings"
	"testing"
)

func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestContains(t *testing.T) {
	want := obj(t, `{"spec":{"hosts":["web"],"http":[{"route":[{"weight":90}]}]},"metadata":{"labels":{"a":"b"}}}`)
	for _, tc := range []struct {
		name string
		live string
		ok   bool
	}{
		{"equal", `{"spec":{"hosts":["web"],"http":[{"route":[{"weight":90}]}]},"metadata":{"labels":{"a":"b"}}}`, true},
		{"extra fields from other managers and defaults", `{"spec":{"hosts":["web"],"gateways":["mesh"],"http":[{"route":[{"weight":90,"x":1}]}]},"metadata":{"labels":{"a":"b","c":"d"},"uid":"u"}}`, true},
		{"changed value", `{"spec":{"hosts":["web"],"http":[{"route":[{"weight":80}]}]},"metadata":{"labels":{"a":"b"}}}`, false},
		{"list grew", `{"spec":{"hosts":["web","x"],"http":[{"route":[{"weight":90}]}]},"metadata":{"labels":{"a":"b"}}}`, false},
		{"field removed", `{"spec":{"http":[{"route":[{"weight":90}]}]},"metadata":{"labels":{"a":"b"}}}`, false},
		{"label removed", `{"spec":{"hosts":["web"],"http":[{"route":[{"weight":90}]}]},"metadata":{}}`, false},
	} {
		live := obj(t, tc.live)
		if got := Contains(live, want); got != tc.ok {
			t.Errorf("%s: Contains = %v, want %v", tc.name, got, tc.ok)
		}
	}
	// Numbers compare by value whatever their Go type (cache vs JSON).
	if !Contains(map[string]any{"n": int64(3)}, map[string]any{"n": float64(3)}) {
		t.Error("int64 3 != float64 3")
	}
}

func TestConflictErrorIsTerminal(t *testing.T) {
	err := &ConflictError{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}
	if err.StalledReason() != "Conflict" {
		t.Fatal(err.StalledReason())
	}
	if msg := err.Error(); msg == "" || !contains(msg, "not created by Meshplane") || !contains(msg, "shop/web") {
		t.Fatal(msg)
	}
	err.OwnedBy = "trafficsplit.shop.other"
	if !contains(err.Error(), "trafficsplit.shop.other") {
		t.Fatal(err.Error())
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
