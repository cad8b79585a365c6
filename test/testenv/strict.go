package testenv

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// Strict returns t with Log and Logf failing the test. The harness logs
// only what went wrong around a test — a manager that stopped with an
// error or did not stop — so a test of the manager itself passes Strict(t)
// to StartManager to make those failures.
func Strict(t testing.TB) testing.TB { return strictTB{t} }

type strictTB struct{ testing.TB }

func (s strictTB) Log(args ...any) {
	s.Helper()
	s.Error(args...)
}

func (s strictTB) Logf(format string, args ...any) {
	s.Helper()
	s.Errorf(format, args...)
}

// FreeAddr returns a loopback address with a free port, for a manager's
// metrics or probe listener.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// CountRequests returns a copy of cfg whose clients count their write
// requests, for a manager whose own clients a test cannot wrap with
// CountWrites (benchmarks pass the copy to StartManager). A write is what
// CountWrites counts — every request but a read (GET, HEAD, OPTIONS; so list and
// watch) — with Events apart: writes holds the rest, events the Events the
// recorders sent.
func CountRequests(cfg *rest.Config) (counted *rest.Config, writes, events *Writes) {
	writes, events = &Writes{}, &Writes{}
	counted = rest.CopyConfig(cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
				w := writes
				if strings.Contains(r.URL.Path, "/events") {
					w = events
				}
				w.add(fmt.Sprintf("%s %s", r.Method, r.URL.Path), nil)
			}
			return rt.RoundTrip(r)
		})
	})
	return counted, writes, events
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
