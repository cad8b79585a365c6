// Package outcome is the one vocabulary of reconcile errors. A phase of a
// controller returns nil or one of these; status.Finish turns the error into
// conditions and Result turns it into what controller-runtime needs:
//
//   - terminal (Stalled): no retry can fix it until the spec or a watched
//     object changes. Stalled=True with the error's reason; returned to
//     controller-runtime as reconcile.TerminalError, so it is counted by
//     controller_runtime_terminal_reconcile_errors_total and not requeued.
//   - waiting (Wait): not a failure; something outside Meshplane is not
//     there yet (a Deployment Available, a revision Ready, a pause).
//     Reconciling=True with the wait's reason, requeued after After (0: on
//     watch events only).
//   - conflict (Conflict): an object Meshplane would write belongs to
//     someone else. Stalled=True with reason Conflict like a terminal
//     error, but re-checked after After, because the foreign object is not
//     watched by owner and its removal is noticed by polling.
//   - transient: anything else (the API server unreachable, an optimistic
//     lock lost). Reconciling=True and returned to controller-runtime,
//     which requeues with backoff.
package outcome

import (
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ConflictRetry is how often a Conflict is re-checked by default.
const ConflictRetry = 2 * time.Minute

// Terminal is implemented by errors that no retry can fix. StalledReason
// returns the condition reason to report.
type Terminal interface {
	error
	StalledReason() string
}

// StalledError is a terminal error with a condition reason and a message
// that says what is wrong and how to fix it.
type StalledError struct {
	// Reason is a CamelCase condition reason.
	Reason string
	// Message is the human-readable explanation.
	Message string
}

// Error returns the message.
func (e *StalledError) Error() string { return e.Message }

// StalledReason returns the condition reason.
func (e *StalledError) StalledReason() string { return e.Reason }

// Stalled returns a terminal error with the given reason and message.
func Stalled(reason, format string, args ...any) error {
	return &StalledError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// WaitError says a phase waits for something outside Meshplane. It is not a
// failure: the object stays Reconciling with Reason and is requeued after
// After (0: only when a watched object changes).
type WaitError struct {
	// Reason is the Reconciling (and Ready=False) reason.
	Reason string
	// Message says what is awaited.
	Message string
	// After is when to look again; 0 waits for a watch event.
	After time.Duration
	// Current marks a wait the spec asks for (a pause): the status is
	// current for the generation.
	Current bool
}

// Error returns the message.
func (e *WaitError) Error() string { return e.Message }

// Wait returns a WaitError.
func Wait(reason string, after time.Duration, format string, args ...any) error {
	return &WaitError{Reason: reason, Message: fmt.Sprintf(format, args...), After: after}
}

// ConflictError says an object Meshplane would write already exists and
// is not the owner's. It reports like a terminal error (Stalled, reason
// Conflict or Reason) and is re-checked after After.
type ConflictError struct {
	// Reason is the Stalled reason; Conflict when empty.
	Reason string
	// Message names the clashing object and how to resolve the clash.
	Message string
	// After is when to re-check; ConflictRetry when 0.
	After time.Duration
}

// Error returns the message.
func (e *ConflictError) Error() string { return e.Message }

// StalledReason returns the condition reason.
func (e *ConflictError) StalledReason() string {
	if e.Reason == "" {
		return "Conflict"
	}
	return e.Reason
}

// RetryAfter returns when to re-check the conflict.
func (e *ConflictError) RetryAfter() time.Duration {
	if e.After <= 0 {
		return ConflictRetry
	}
	return e.After
}

// Conflict returns a ConflictError re-checked after ConflictRetry.
func Conflict(format string, args ...any) error {
	return &ConflictError{Message: fmt.Sprintf(format, args...)}
}

// Retrier is implemented by terminal-looking errors that are nevertheless
// re-checked on a timer (conflicts with objects that are not watched).
type Retrier interface {
	error
	RetryAfter() time.Duration
}

// AsTerminal reports whether err (or an error it wraps) is terminal, and
// returns it.
func AsTerminal(err error) (Terminal, bool) {
	var t Terminal
	if errors.As(err, &t) {
		return t, true
	}
	return nil, false
}

// IsTerminal reports whether err is terminal.
func IsTerminal(err error) bool {
	_, ok := AsTerminal(err)
	return ok
}

// AsWait reports whether err (or an error it wraps) is a WaitError.
func AsWait(err error) (*WaitError, bool) {
	var w *WaitError
	if errors.As(err, &w) {
		return w, true
	}
	return nil, false
}

// AsConflict reports whether err (or an error it wraps) is a conflict to be
// re-checked on a timer, and returns when.
func AsConflict(err error) (time.Duration, bool) {
	var r Retrier
	if errors.As(err, &r) {
		return r.RetryAfter(), true
	}
	return 0, false
}

// IsConflict reports whether err is a conflict (see AsConflict), or a
// terminal error with reason Conflict.
func IsConflict(err error) bool {
	_, ok := conflictRetry(err)
	return ok
}

func conflictRetry(err error) (time.Duration, bool) {
	if after, ok := AsConflict(err); ok {
		return after, true
	}
	if t, ok := AsTerminal(err); ok && t.StalledReason() == "Conflict" {
		return ConflictRetry, true
	}
	return 0, false
}

// Result is what a Reconcile returns for the phases' result res and error
// err: res on success; a requeue after the wait or conflict interval; a
// reconcile.TerminalError for a terminal error; err itself (requeue with
// backoff) otherwise.
func Result(res ctrl.Result, err error) (ctrl.Result, error) {
	if err == nil {
		return res, nil
	}
	if w, ok := AsWait(err); ok {
		return ctrl.Result{RequeueAfter: w.After}, nil
	}
	if after, ok := conflictRetry(err); ok {
		return ctrl.Result{RequeueAfter: after}, nil
	}
	if IsTerminal(err) {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return ctrl.Result{}, err
}

// TransientError is a transient error with its own Reconciling reason (a
// member cluster unreachable, a referenced object not there yet).
type TransientError struct {
	// Reason is the Reconciling (and Ready=False) reason.
	Reason string
	// Err is the cause.
	Err error
}

// Error returns the cause's message.
func (e *TransientError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *TransientError) Unwrap() error { return e.Err }

// Transient returns err with a Reconciling reason; it stays transient.
func Transient(reason string, err error) error {
	return &TransientError{Reason: reason, Err: err}
}

// TransientReason returns the reason of a TransientError in err's chain.
func TransientReason(err error) (string, bool) {
	var t *TransientError
	if errors.As(err, &t) && t.Reason != "" {
		return t.Reason, true
	}
	return "", false
}

// Reason is the condition reason an error reports: a terminal error's
// Stalled reason, a wait's or a TransientError's reason, else fallback. It
// is what status.Finish writes as the Ready reason.
func Reason(err error, fallback string) string {
	if t, ok := AsTerminal(err); ok {
		return t.StalledReason()
	}
	if w, ok := AsWait(err); ok && w.Reason != "" {
		return w.Reason
	}
	if r, ok := TransientReason(err); ok {
		return r
	}
	return fallback
}
