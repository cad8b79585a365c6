package meshinstall

import (
	"fmt"
	"time"
)

// waitError says a phase waits for something outside Meshplane (a
// Deployment to become Available, a revision to become Ready, a pause). It
// is not a failure: the object stays Reconciling and is requeued after
// After (0: only when a watched object changes).
type waitError struct {
	reason string
	msg    string
	after  time.Duration
}

func (e *waitError) Error() string { return e.msg }

func waiting(reason string, after time.Duration, format string, args ...any) error {
	return &waitError{reason: reason, msg: fmt.Sprintf(format, args...), after: after}
}
