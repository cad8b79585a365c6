package testenv

import (
	"net/http"

	"k8s.io/client-go/rest"
)

// CountRequests returns a copy of cfg whose clients count every write
// request they send (any method but GET, HEAD and OPTIONS) in the returned
// Writes: CountWrites for clients that are not controller-runtime's, such
// as the Helm SDK's.
func CountRequests(cfg *rest.Config) (*rest.Config, *Writes) {
	w := &Writes{}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return requestCounter{rt: rt, w: w} })
	return out, w
}

type requestCounter struct {
	rt http.RoundTripper
	w  *Writes
}

func (c requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		c.w.add(r.Method+" "+r.URL.Path, nil)
	}
	return c.rt.RoundTrip(r)
}
