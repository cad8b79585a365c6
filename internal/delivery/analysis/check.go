package analysis

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// DefaultTimeout bounds one query when Checker.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// IdleConnsPerHost is the idle connections a Checker keeps per metrics
// server: at least the Canary controller's default concurrency.
const IdleConnsPerHost = 64

// Target is what the queries are about.
type Target struct {
	// Provider picks the built-in queries.
	Provider meshv1alpha1.Provider
	// Namespace is the Canary's namespace ({{ namespace }}).
	Namespace string
	// Workload is the canary Deployment's name, the original target
	// ({{ target }}).
	Workload string
	// Service is the routed Service's name ({{ service }}).
	Service string
	// Interval is the analysis interval; a metric's own interval overrides
	// it in queries ({{ interval }}).
	Interval time.Duration
}

// Credentials for the metrics API, read by the controller from the
// MetricsServer's secretRef. A Token is sent as a bearer token; otherwise a
// Username is sent with Password as basic auth.
type Credentials struct{ Username, Password, Token string }

// Result of one metric check.
type Result struct {
	// Metric is the CanaryMetric's name.
	Metric string
	// Query is the query sent ("" when it could not be rendered).
	Query string
	// Value is the value returned; NaN when there was none.
	Value float64
	// Passed is true when the value was within the thresholdRange.
	Passed bool
	// Message says why the check failed: the server unreachable (address
	// and error), no data (the query shown), or out of range (value and
	// range). Empty when Passed.
	Message string
}

// Checker runs metric checks against a Prometheus-compatible HTTP API. The
// zero value is usable and safe for concurrent use. A Checker holds its
// connection pools: make one and share it (a Checker per query leaves
// each new pool's idle connections open for 90 s).
type Checker struct {
	// Timeout bounds one query; DefaultTimeout when zero.
	Timeout time.Duration
	// Transport is the base transport (tests); a clone of
	// http.DefaultTransport when nil. insecureSkipVerify is applied to a
	// clone of it when it is an *http.Transport.
	Transport http.RoundTripper
	// Now is the evaluation time of the instant queries; time.Now when
	// nil.
	Now func() time.Time

	mu         sync.Mutex
	transports map[bool]http.RoundTripper
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// transport returns the shared base transport for the TLS setting, so
// connections are reused across analyses.
func (c *Checker) transport(insecure bool) http.RoundTripper {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt, ok := c.transports[insecure]; ok {
		return rt
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	if ht, ok := base.(*http.Transport); ok && (c.Transport == nil || insecure) {
		ht = ht.Clone()
		if c.Transport == nil {
			// Every Canary's analysis queries the same few servers: keep
			// as many idle connections per server as the controller runs
			// analyses at once, not net/http's 2 (the rest were closed and
			// reopened every interval).
			ht.MaxIdleConnsPerHost = IdleConnsPerHost
		}
		if insecure {
			if ht.TLSClientConfig == nil {
				ht.TLSClientConfig = &tls.Config{}
			}
			ht.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // asked for by MetricsServer.insecureSkipVerify
		}
		rt = ht
	}
	if c.transports == nil {
		c.transports = map[bool]http.RoundTripper{}
	}
	c.transports[insecure] = rt
	return rt
}

// authRoundTripper adds the credentials to every request.
type authRoundTripper struct {
	creds Credentials
	next  http.RoundTripper
}

func (a authRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	switch {
	case a.creds.Token != "":
		req.Header.Set("Authorization", "Bearer "+a.creds.Token)
	case a.creds.Username != "":
		req.SetBasicAuth(a.creds.Username, a.creds.Password)
	}
	return a.next.RoundTrip(req)
}

// Check runs every metric once against server, concurrently, and returns
// one Result per metric in the order given. Nothing is ever counted as a
// pass without a value in range: an unreachable server, a timeout, an HTTP
// or query error, an empty result, NaN/±Inf, or more than one series fail
// the check with a message saying which.
func (c *Checker) Check(ctx context.Context, server meshv1alpha1.MetricsServer, creds *Credentials, metrics []meshv1alpha1.CanaryMetric, t Target) []Result {
	results := make([]Result, len(metrics))
	if len(metrics) == 0 {
		return results
	}
	rt := c.transport(server.InsecureSkipVerify)
	if creds != nil && (creds.Token != "" || creds.Username != "") {
		rt = authRoundTripper{creds: *creds, next: rt}
	}
	client, err := promapi.NewClient(promapi.Config{Address: server.Address, RoundTripper: rt})
	if err != nil {
		for i, m := range metrics {
			results[i] = Result{Metric: m.Name, Value: math.NaN(), Message: fmt.Sprintf("metrics server address %q is not usable: %v", server.Address, err)}
		}
		return results
	}
	api := promv1.NewAPI(client)
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	at := now()
	var wg sync.WaitGroup
	for i, m := range metrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.checkOne(ctx, api, server.Address, m, t, at)
		}()
	}
	wg.Wait()
	return results
}

func (c *Checker) checkOne(ctx context.Context, api promv1.API, address string, m meshv1alpha1.CanaryMetric, t Target, at time.Time) Result {
	res := Result{Metric: m.Name, Value: math.NaN()}
	q, err := Query(m, t)
	if err != nil {
		res.Message = err.Error()
		return res
	}
	res.Query = q
	v, err := c.query(ctx, api, address, q, at)
	if err != nil {
		res.Message = fmt.Sprintf("metric %s: %v", m.Name, err)
		return res
	}
	res.Value = v
	ok, why := InRange(v, m.ThresholdRange)
	res.Passed = ok
	if !ok {
		res.Message = fmt.Sprintf("metric %s: %s", m.Name, why)
	}
	return res
}

// query runs one instant query and returns its single value.
func (c *Checker) query(ctx context.Context, api promv1.API, address, q string, at time.Time) (float64, error) {
	timeout := c.timeout()
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	val, _, _, err := api.Query(qctx, q, at, promv1.WithTimeout(timeout))
	if err != nil {
		if ctx.Err() != nil {
			return math.NaN(), fmt.Errorf("query to metrics server %s abandoned: %v", address, context.Cause(ctx))
		}
		if errors.Is(qctx.Err(), context.DeadlineExceeded) {
			return math.NaN(), fmt.Errorf("metrics server %s did not answer within %s", address, timeout)
		}
		var perr *promv1.Error
		if errors.As(err, &perr) && (perr.Type == promv1.ErrBadData || perr.Type == promv1.ErrExec || perr.Type == promv1.ErrTimeout) {
			return math.NaN(), fmt.Errorf("metrics server %s could not evaluate query %s: %s: %s", address, q, perr.Type, oneLine(perr.Msg))
		}
		msg := err.Error()
		if perr != nil && perr.Detail != "" {
			msg += ": " + detail(perr.Detail)
		}
		return math.NaN(), fmt.Errorf("metrics server %s unreachable or failing: %s", address, oneLine(msg))
	}
	switch v := val.(type) {
	case *model.Scalar:
		return number(float64(v.Value), q)
	case model.Vector:
		switch len(v) {
		case 0:
			return math.NaN(), fmt.Errorf("no data for query %s", q)
		case 1:
			if v[0].Histogram != nil {
				return math.NaN(), fmt.Errorf("query %s returned a native histogram, not a number (use histogram_quantile or histogram_count)", q)
			}
			return number(float64(v[0].Value), q)
		default:
			return math.NaN(), fmt.Errorf("query %s returned %d series; it must return one (aggregate it, e.g. with sum)", q, len(v))
		}
	default:
		return math.NaN(), fmt.Errorf("query %s returned a %s; it must return a scalar or a one-sample instant vector", q, val.Type())
	}
}

func number(v float64, q string) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, fmt.Errorf("no data for query %s (the value is %s, e.g. no requests in the window)", q, formatValue(v))
	}
	return v, nil
}

// detail is the error of a Prometheus-style JSON error body, or the body.
func detail(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
		return e.Error
	}
	return body
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
