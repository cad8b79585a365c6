package helm

import "errors"

// kindNotServed is a render failure because the chart uses a kind the API
// server does not serve (yet): its CRDs are not installed.
type kindNotServed struct{ error }

func (k kindNotServed) Unwrap() error { return k.error }

// IsKindNotServed reports whether err is a render failure because the
// chart uses a kind the API server does not serve, so that a caller
// installing the CRDs in the same change can install them first.
func IsKindNotServed(err error) bool {
	var k kindNotServed
	return errors.As(err, &k)
}
