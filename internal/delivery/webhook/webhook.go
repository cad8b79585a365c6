// Package webhook calls a Canary's webhooks.
//
// Every call is an HTTP POST of a JSON Payload with Content-Type
// application/json:
//
//	{
//	  "name": "podinfo",              // the Canary
//	  "namespace": "test",
//	  "phase": "Progressing",         // the Canary's phase at the call
//	  "type": "confirm-promotion",    // the hook's type
//	  "checksum": "6b8f7c...",        // hash of the canary's pod template
//	  "metadata": {"cmd": "..."}      // the hook's metadata
//	}
//
// A 2xx answer is a success; anything else, a connection error or no
// answer within the hook's timeout (10s by default) is a failure whose
// error names the hook, its URL (without user information, query or
// fragment, which may hold credentials), the status code and a fixed
// classification of it. The body of the answer is never copied into
// status, Events or logs: a hook URL may point at anything inside the
// cluster, and its answer may be an HTML error page or a secret. The one
// exception is the documented answer schema, a JSON object whose only
// field is "message":
//
//	HTTP/1.1 403 Forbidden
//	Content-Type: application/json
//
//	{"message": "not approved yet by the release manager"}
//
// Its message is quoted, cut to 128 characters, with control characters
// and repeated spaces removed; any other body (not JSON, other fields,
// over 4 KiB) is ignored. What a failure means depends on the type: gates (IsGate) hold the
// canary, checks (pre-rollout, rollout) fail the analysis interval, and
// notifications (post-rollout, event) are only reported. Rollback hooks are
// the other way round: they are polled and a 2xx asks for a rollback
// (RollbackRequested).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// DefaultTimeout bounds a call whose hook sets no timeout.
const DefaultTimeout = 10 * time.Second

// maxAnswer is the largest body read as the documented answer schema;
// maxMessage is how much of its message is quoted.
const (
	maxAnswer  = 4 << 10
	maxMessage = 128
)

// Answer is the documented schema of a webhook's answer body: the message
// of a failing answer is quoted in the Canary's status.
type Answer struct {
	// Message says why the hook refused (at most 128 characters shown).
	Message string `json:"message"`
}

// Payload is the JSON body POSTed to a webhook.
type Payload struct {
	// Name of the Canary.
	Name string `json:"name"`
	// Namespace of the Canary.
	Namespace string `json:"namespace"`
	// Phase of the Canary when the hook is called.
	Phase meshv1alpha1.CanaryPhase `json:"phase"`
	// Type of the hook called; Call sets it from the hook.
	Type meshv1alpha1.WebhookType `json:"type"`
	// Checksum is the hash of the canary's pod template (the revision
	// under analysis).
	Checksum string `json:"checksum"`
	// Metadata is the hook's metadata, over any given here by the caller.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Caller calls webhooks. The zero value is usable and shares one pool of
// connections with every other zero Caller.
type Caller struct {
	// Client makes the calls; a client without its own timeout is best, the
	// hook's timeout bounds each call. DefaultClient when nil.
	Client *http.Client
}

// DefaultClient is the client of a Caller without one: net/http's default
// transport keeping IdleConnsPerHost idle connections per hook host instead
// of 2 (every held Canary calls its gate once an interval; with 2, the
// others' connections were closed and reopened each time).
var DefaultClient = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = IdleConnsPerHost
	return t
}()}

// IdleConnsPerHost is the idle connections DefaultClient keeps per host: at
// least the Canary controller's default concurrency.
const IdleConnsPerHost = 64

// IsGate reports whether typ holds the canary until its hooks return 2xx:
// confirm-rollout, confirm-traffic-increase and confirm-promotion.
func IsGate(typ meshv1alpha1.WebhookType) bool {
	switch typ {
	case meshv1alpha1.WebhookConfirmRollout, meshv1alpha1.WebhookConfirmTrafficIncrease, meshv1alpha1.WebhookConfirmPromotion:
		return true
	}
	return false
}

// IsNotification reports whether typ's answer changes nothing in the
// analysis (post-rollout, event, and rollback, whose non-2xx answer asks for
// nothing): Run calls every hook of these types and joins their failures.
func IsNotification(typ meshv1alpha1.WebhookType) bool {
	switch typ {
	case meshv1alpha1.WebhookPostRollout, meshv1alpha1.WebhookRollback, meshv1alpha1.WebhookEvent:
		return true
	}
	return false
}

// Call POSTs p to h within h's timeout (DefaultTimeout when unset). It
// returns nil on a 2xx answer and otherwise an error naming the hook, its
// URL and the status with an excerpt of the body, or the transport error.
func (c *Caller) Call(ctx context.Context, h meshv1alpha1.CanaryWebhook, p Payload) error {
	timeout := DefaultTimeout
	if h.Timeout != nil && h.Timeout.Duration > 0 {
		timeout = h.Timeout.Duration
	}
	p.Type = h.Type
	if len(h.Metadata) > 0 {
		md := make(map[string]string, len(p.Metadata)+len(h.Metadata))
		maps.Copy(md, p.Metadata)
		maps.Copy(md, h.Metadata)
		p.Metadata = md
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("webhook %s (%s): encoding the payload: %w", h.Name, h.Type, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	shown := Redact(h.URL)
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s (%s) %s: the URL cannot be called (spec.analysis.webhooks[].url)", h.Name, h.Type, shown)
	}
	req.Header.Set("Content-Type", "application/json")
	client := c.Client
	if client == nil {
		client = DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("webhook %s (%s) %s: no answer within %s", h.Name, h.Type, shown, timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the full URL
		}
		return fmt.Errorf("webhook %s (%s) %s: %w", h.Name, h.Type, shown, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("webhook %s (%s) %s: status %d (%s)", h.Name, h.Type, shown, resp.StatusCode, classify(resp.StatusCode))
	if m := answerMessage(resp.Header.Get("Content-Type"), raw); m != "" {
		msg += ": " + strconv.Quote(m)
	}
	return errors.New(msg)
}

// classify is the fixed description of a non-2xx status.
func classify(code int) string {
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "refused: not authorized or not approved"
	case code == http.StatusNotFound:
		return "not found: check the hook's URL path"
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return "busy: retried at the next check"
	case code >= 300 && code < 400:
		return "redirect, not followed: point the URL at the final address"
	case code >= 400 && code < 500:
		return "refused by the hook"
	case code >= 500:
		return "the hook failed"
	}
	return "not a success"
}

// answerMessage returns the sanitized message of a body in the documented
// answer schema, or "".
func answerMessage(contentType string, raw []byte) string {
	if len(raw) > maxAnswer || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "application/json") {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var a Answer
	if err := dec.Decode(&a); err != nil || dec.More() {
		return ""
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(a.Message, ""))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxMessage {
		s = string(r[:maxMessage]) + "…"
	}
	return s
}

// Redact returns a hook URL as shown in messages: scheme, host and path,
// without user information, query or fragment.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
	return u.String()
}

// Run calls every hook of type typ in the order given. For gates and
// checks it stops at the first failure and returns it; notifications
// (IsNotification) are all called and their failures joined. No hook of
// that type is nil.
func (c *Caller) Run(ctx context.Context, hooks []meshv1alpha1.CanaryWebhook, typ meshv1alpha1.WebhookType, p Payload) error {
	var errs []error
	for _, h := range hooks {
		if h.Type != typ {
			continue
		}
		if err := c.Call(ctx, h, p); err != nil {
			if !IsNotification(typ) {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RollbackRequested calls the rollback hooks in order (Flagger's
// semantics: they are polled while an analysis runs) and returns the name
// of the first that answered 2xx, which asks for a rollback now. A non-2xx
// answer or an unreachable hook asks for nothing; those errors are
// returned joined, for events and logs only.
func (c *Caller) RollbackRequested(ctx context.Context, hooks []meshv1alpha1.CanaryWebhook, p Payload) (string, error) {
	var errs []error
	for _, h := range hooks {
		if h.Type != meshv1alpha1.WebhookRollback {
			continue
		}
		err := c.Call(ctx, h, p)
		if err == nil {
			return h.Name, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}
