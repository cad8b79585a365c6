package helm

import (
	"context"
	"regexp"
	"time"

	"github.com/meshplane/meshplane/internal/outcome"
)

// userinfo matches the scheme and userinfo of a URL (up to the last @
// before the host), e.g. "https://user:secret@".
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/\s"'<>?#]*@`)

// RedactURLs replaces the userinfo of every URL in s with "redacted", so a
// password in a repository URL (spec.chart.repository stored before the
// API refused them, or a chart URL in a repository's index.yaml) never
// reaches a condition, an Event or a log.
func RedactURLs(s string) string {
	return userinfo.ReplaceAllString(s, "${1}redacted@")
}

// HasUserinfo reports whether s holds a URL with userinfo.
func HasUserinfo(s string) bool { return userinfo.MatchString(s) }

// RedactError returns err with the userinfo of every URL in its message
// redacted, keeping what decides its outcome: the redacted error wraps err,
// so a Stalled reason, a transient reason or ErrReleaseNotFound is still
// found by errors.As/Is; a wait's own message is redacted too. err is
// returned as it is when its message holds no userinfo.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := RedactURLs(msg)
	if red == msg {
		return err
	}
	if w, ok := outcome.AsWait(err); ok {
		return &outcome.WaitError{Reason: w.Reason, Message: RedactURLs(w.Message), After: w.After, Current: w.Current}
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Redacting wraps a Releaser so that every error it returns passes through
// RedactError: Helm's errors echo repository and chart URLs.
func Redacting(r Releaser) Releaser { return redacting{r} }

type redacting struct{ r Releaser }

func (h redacting) Render(ctx context.Context, rel Release) (string, error) {
	out, err := h.r.Render(ctx, rel)
	return out, RedactError(err)
}

func (h redacting) Ensure(ctx context.Context, rel Release, wait bool, timeout time.Duration) (Result, error) {
	res, err := h.r.Ensure(ctx, rel, wait, timeout)
	return res, RedactError(err)
}

func (h redacting) Adopt(ctx context.Context, rel Release, wait bool, timeout time.Duration) (Result, error) {
	res, err := h.r.Adopt(ctx, rel, wait, timeout)
	return res, RedactError(err)
}

func (h redacting) Get(ctx context.Context, name, namespace string) (*ReleaseInfo, error) {
	info, err := h.r.Get(ctx, name, namespace)
	return info, RedactError(err)
}

func (h redacting) Uninstall(ctx context.Context, name, namespace string, wait bool, timeout time.Duration) error {
	return RedactError(h.r.Uninstall(ctx, name, namespace, wait, timeout))
}

func (h redacting) Validate(ctx context.Context, rels []Release) error {
	return RedactError(h.r.Validate(ctx, rels))
}

func (h redacting) Rollback(ctx context.Context, name, namespace string, wait bool, timeout time.Duration) error {
	return RedactError(h.r.Rollback(ctx, name, namespace, wait, timeout))
}
