// Package outcome classifies reconcile errors: a terminal error stalls the
// object (condition Stalled=True, no retry until the spec or a watched
// object changes); any other error is transient and requeued with backoff.
package outcome

import (
	"errors"
	"fmt"
)

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
