package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TestHostileAnswers: whatever a hook answers, only the status code, a
// fixed classification and, for the documented schema, a sanitized and
// bounded message reach the error (which becomes status and Events).
func TestHostileAnswers(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		want                    string // after "<hook> <url>: "
	}{
		{"huge body", "text/plain", strings.Repeat("x", 1<<20), 500, "status 500 (the hook failed)"},
		{"HTML error page", "text/html", "<html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>", 502, "status 502 (the hook failed)"},
		{"secret-looking text", "text/plain", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\npassword: hunter2", 403,
			"status 403 (refused: not authorized or not approved)"},
		{"secret-looking JSON, other fields", "application/json", `{"token":"eyJhbGciOiJIUzI1NiJ9.secret","message":"x"}`, 401,
			"status 401 (refused: not authorized or not approved)"},
		{"documented schema", "application/json; charset=utf-8", `{"message":"not approved yet\n  by the release manager"}`, 403,
			`status 403 (refused: not authorized or not approved): "not approved yet by the release manager"`},
		{"documented schema, long message", "application/json", `{"message":"` + long + `"}`, 409,
			`status 409 (refused by the hook): "` + strings.Repeat("é", 128) + `…"`},
		{"documented schema, control characters", "application/json", `{"message":"a\u0000b\u001b[31mc\u202ed"}`, 500,
			`status 500 (the hook failed): "ab[31mcd"`},
		{"JSON over 4 KiB", "application/json", `{"message":"` + strings.Repeat("y", 5000) + `"}`, 500, "status 500 (the hook failed)"},
		{"two JSON values", "application/json", `{"message":"a"}{"message":"b"}`, 500, "status 500 (the hook failed)"},
		{"JSON schema with a wrong content type", "text/plain", `{"message":"hello"}`, 500, "status 500 (the hook failed)"},
		{"redirect", "text/html", "<a href=x>moved</a>", 307, "status 307 (redirect, not followed: point the URL at the final address)"},
		{"not found", "", "", 404, "status 404 (not found: check the hook's URL path)"},
		{"busy", "", "", 429, "status 429 (busy: retried at the next check)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				if tc.status == 307 {
					w.Header().Set("Location", "http://169.254.169.254/latest/meta-data/")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := &Caller{Client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
			h := meshv1alpha1.CanaryWebhook{Name: "gate", Type: meshv1alpha1.WebhookConfirmPromotion, URL: srv.URL + "/hook"}
			err := c.Call(context.Background(), h, Payload{Name: "web"})
			want := "webhook gate (confirm-promotion) " + srv.URL + "/hook: " + tc.want
			if err == nil || err.Error() != want {
				t.Fatalf("got  %v\nwant %s", err, want)
			}
		})
	}
}

// TestURLCredentialsNotShown: user information, query and fragment of a
// hook URL never appear in an error, for an answer or a transport error.
func TestURLCredentialsNotShown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	h := meshv1alpha1.CanaryWebhook{Name: "g", Type: meshv1alpha1.WebhookRollout, URL: "http://admin:s3cret@" + host + "/p?token=abc#frag"}
	err := (&Caller{}).Call(context.Background(), h, Payload{})
	if want := "webhook g (rollout) http://" + host + "/p: status 500 (the hook failed)"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	_ = l.Close()
	h.URL = "http://admin:s3cret@" + addr + "/p?token=abc"
	err = (&Caller{}).Call(context.Background(), h, Payload{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "token") || !strings.HasPrefix(err.Error(), "webhook g (rollout) http://"+addr+"/p: ") {
		t.Fatalf("transport error: %v", err)
	}
}
