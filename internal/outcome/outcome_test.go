package outcome

import (
	"errors"
	"fmt"
	"testing"
)

func TestAsTerminal(t *testing.T) {
	stalled := Stalled("ProviderUnknown", "provider %q is not registered", "Kuma")
	for _, tc := range []struct {
		name       string
		err        error
		wantReason string
	}{
		{name: "plain error is transient", err: errors.New("connection refused")},
		{name: "stalled", err: stalled, wantReason: "ProviderUnknown"},
		{name: "wrapped stalled", err: fmt.Errorf("reconcile: %w", stalled), wantReason: "ProviderUnknown"},
		{name: "nil", err: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := AsTerminal(tc.err)
			if ok != (tc.wantReason != "") {
				t.Fatalf("AsTerminal ok = %v, want %v", ok, tc.wantReason != "")
			}
			if ok && got.StalledReason() != tc.wantReason {
				t.Fatalf("reason = %q, want %q", got.StalledReason(), tc.wantReason)
			}
			if IsTerminal(tc.err) != ok {
				t.Fatalf("IsTerminal disagrees with AsTerminal")
			}
		})
	}
	if stalled.Error() != `provider "Kuma" is not registered` {
		t.Fatalf("message = %q", stalled.Error())
	}
}
