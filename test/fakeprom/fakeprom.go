// Package fakeprom is a Prometheus-compatible HTTP API for tests: it
// answers the real instant-query endpoint (/api/v1/query, GET or POST form)
// with the JSON Prometheus returns, from values a test scripts by query
// substring. It listens on 127.0.0.1 only.
package fakeprom

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a scripted Prometheus query API. It is safe for concurrent use.
type Server struct {
	// URL is the server's base address, e.g. http://127.0.0.1:41234, to use
	// as a MetricsServer address.
	URL string

	srv *httptest.Server

	mu      sync.Mutex
	rules   []rule
	def     answer
	queries []string
	headers []http.Header
	delay   time.Duration
}

// answer is what a query gets.
type answer struct {
	values []float64 // nil or empty: no data (empty vector)
	scalar bool
	status int // non-zero: an error answer with this HTTP status
	errMsg string
}

type rule struct {
	substr string
	answer answer
}

// Start starts a server on a 127.0.0.1 listener, closed by t.Cleanup.
// Queries that match no rule get no data until SetDefault.
func Start(t testing.TB) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

// New starts a server on a 127.0.0.1 listener outside a test (a demo, a
// TestMain); the caller closes it.
func New() *Server {
	s := &Server{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Listen starts a server on addr (host:port; use a 127.0.0.1 address),
// for a demo that needs a fixed port; the caller closes it.
func Listen(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeprom: %w", err)
	}
	s := &Server{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	_ = s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
	return s, nil
}

func (s *Server) set(substr string, a answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.rules {
		if s.rules[i].substr == substr {
			s.rules[i].answer = a
			return
		}
	}
	s.rules = append(s.rules, rule{substr: substr, answer: a})
}

// Set scripts value as the answer (a one-sample vector) to queries
// containing substr. Rules are tried in the order first set; setting the
// same substr again replaces its answer in place.
func (s *Server) Set(substr string, value float64) {
	s.set(substr, answer{values: []float64{value}})
}

// SetScalar scripts value as a scalar answer to queries containing substr.
func (s *Server) SetScalar(substr string, value float64) {
	s.set(substr, answer{values: []float64{value}, scalar: true})
}

// SetSamples scripts a vector with one sample per value (series told apart
// by a "series" label) for queries containing substr.
func (s *Server) SetSamples(substr string, values ...float64) {
	s.set(substr, answer{values: append([]float64(nil), values...)})
}

// SetNoData scripts an empty vector for queries containing substr.
func (s *Server) SetNoData(substr string) { s.set(substr, answer{}) }

// SetError scripts a Prometheus error answer (HTTP status, errorType
// "bad_data" for 400 and 422, "execution" otherwise) for queries
// containing substr.
func (s *Server) SetError(substr string, status int, msg string) {
	s.set(substr, answer{status: status, errMsg: msg})
}

// SetDefault scripts value as the answer to queries matching no rule.
func (s *Server) SetDefault(value float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = answer{values: []float64{value}}
}

// SetDelay makes every answer wait d first (or until the client gives up),
// to test timeouts.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Queries returns the queries received so far, in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// Headers returns the headers of the query requests received so far, in
// order, for assertions on authentication.
func (s *Server) Headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := make([]http.Header, len(s.headers))
	for i, h := range s.headers {
		hs[i] = h.Clone()
	}
	return hs
}

// Close stops the server: its port refuses connections from then on (the
// "metrics server goes away" fault). Safe to call more than once.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) lookup(q string) (answer, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if strings.Contains(q, r.substr) {
			return r.answer, s.delay
		}
	}
	return s.def, s.delay
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"status": "error", "errorType": typ, "error": msg})
}

// formatValue writes a sample value as Prometheus does.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		writeError(w, http.StatusNotFound, "bad_data", "fakeprom answers only /api/v1/query, not "+r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "bad_data", "method "+r.Method+" not allowed")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", "invalid form: "+err.Error())
		return
	}
	q := r.Form.Get("query")
	if q == "" {
		writeError(w, http.StatusBadRequest, "bad_data", `invalid parameter "query": unknown position: parse error: no expression found in input`)
		return
	}
	ts := float64(time.Now().UnixNano()) / 1e9
	if tp := r.Form.Get("time"); tp != "" {
		f, err := strconv.ParseFloat(tp, 64)
		if err != nil {
			if t, terr := time.Parse(time.RFC3339Nano, tp); terr == nil {
				f, err = float64(t.UnixNano())/1e9, nil
			}
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid parameter \"time\": cannot parse %q to a valid timestamp", tp))
			return
		}
		ts = f
	}
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()

	a, delay := s.lookup(q)
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if a.status != 0 {
		typ := "execution"
		if a.status == http.StatusBadRequest || a.status == http.StatusUnprocessableEntity {
			typ = "bad_data"
		}
		writeError(w, a.status, typ, a.errMsg)
		return
	}
	tsJSON := json.Number(strconv.FormatFloat(ts, 'f', 3, 64))
	if a.scalar && len(a.values) == 1 {
		writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
			"resultType": "scalar", "result": []any{tsJSON, formatValue(a.values[0])},
		}})
		return
	}
	result := make([]any, 0, len(a.values))
	for i, v := range a.values {
		metric := map[string]string{}
		if len(a.values) > 1 {
			metric["series"] = strconv.Itoa(i)
		}
		result = append(result, map[string]any{"metric": metric, "value": []any{tsJSON, formatValue(v)}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
		"resultType": "vector", "result": result,
	}})
}
