package outcome

import (
	"errors"
	"fmt"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
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

func TestResult(t *testing.T) {
	for _, tc := range []struct {
		name      string
		res       ctrl.Result
		err       error
		want      ctrl.Result
		wantErr   bool
		terminal  bool
		transient bool
	}{
		{name: "success keeps the phases' requeue", res: ctrl.Result{RequeueAfter: time.Minute}, want: ctrl.Result{RequeueAfter: time.Minute}},
		{name: "wait requeues after its interval", err: Wait("Waiting", 5*time.Second, "istiod not Available"), want: ctrl.Result{RequeueAfter: 5 * time.Second}},
		{name: "wrapped wait", err: fmt.Errorf("phase: %w", Wait("Waiting", time.Second, "x")), want: ctrl.Result{RequeueAfter: time.Second}},
		{name: "conflict re-checked", err: Conflict("VirtualService shop/web exists"), want: ctrl.Result{RequeueAfter: ConflictRetry}},
		{name: "terminal with reason Conflict re-checked", err: Stalled("Conflict", "namespace held by another policy"), want: ctrl.Result{RequeueAfter: ConflictRetry}},
		{name: "terminal", err: Stalled("InvalidSpec", "bad"), wantErr: true, terminal: true},
		{name: "transient", err: errors.New("connection refused"), wantErr: true, transient: true},
		{name: "transient with reason", err: Transient("ClusterUnreachable", errors.New("dial")), wantErr: true, transient: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Result(tc.res, tc.err)
			if got != tc.want {
				t.Fatalf("result = %+v, want %+v", got, tc.want)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.terminal && !errors.Is(err, reconcile.TerminalError(nil)) {
				t.Fatalf("terminal error %v is not a reconcile.TerminalError", err)
			}
			if tc.transient && errors.Is(err, reconcile.TerminalError(nil)) {
				t.Fatalf("transient error %v returned as terminal", err)
			}
		})
	}
	if r, ok := TransientReason(fmt.Errorf("x: %w", Transient("ClusterUnreachable", errors.New("dial")))); !ok || r != "ClusterUnreachable" {
		t.Fatalf("TransientReason = %q, %v", r, ok)
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("connection refused"), "ApplyFailed"},
		{Stalled("InvalidSpec", "bad"), "InvalidSpec"},
		{fmt.Errorf("x: %w", Conflict("exists")), "Conflict"},
		{Wait("Waiting", time.Second, "istiod"), "Waiting"},
		{Transient("ClusterUnreachable", errors.New("dial")), "ClusterUnreachable"},
	} {
		if got := Reason(tc.err, "ApplyFailed"); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
