package promreal

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Workload is traffic the exporter reports for one workload.
type Workload struct {
	// Namespace and Name of the workload (the Deployment).
	Namespace, Name string
	// Requests answered per scrape, of which Errors with a 503.
	Requests, Errors int
	// Latency of every request.
	Latency time.Duration
	// Ambient reports Istio's metrics from a waypoint
	// (reporter="waypoint") instead of the workload's sidecar.
	Ambient bool
}

// Bucket boundaries each mesh uses for its request-duration histogram.
var (
	// IstioBuckets are Istio's default istio_request_duration_milliseconds buckets.
	IstioBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
	// LinkerdBuckets are the Linkerd proxy's response_latency_ms buckets.
	LinkerdBuckets = []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}
	// HubbleBuckets are Hubble's hubble_http_request_duration_seconds buckets.
	HubbleBuckets = prometheus.DefBuckets
)

// Exporter serves, on 127.0.0.1, the request metrics of Istio's proxies,
// Linkerd's proxies and Hubble for its workloads, with the labels each
// emits. Every scrape first adds one round of each workload's traffic, so
// rates are exact ratios of what was configured. Traffic the built-in
// queries must not count is served too: Istio's client-side
// (reporter="source") series and Linkerd's outbound series, all failing.
type Exporter struct {
	// Addr is host:port of /metrics.
	Addr string

	mu        sync.Mutex
	workloads []Workload
	istioReq  *prometheus.CounterVec
	istioDur  *prometheus.HistogramVec
	l5dResp   *prometheus.CounterVec
	l5dLat    *prometheus.HistogramVec
	hubbleReq *prometheus.CounterVec
	hubbleDur *prometheus.HistogramVec
}

var istioLabels = []string{"reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace", "destination_cluster",
	"request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy"}

// StartExporter serves the workloads' metrics until the test ends.
func StartExporter(t testing.TB, workloads ...Workload) *Exporter {
	t.Helper()
	e := &Exporter{workloads: workloads,
		istioReq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_requests_total", Help: "Total requests."}, istioLabels),
		istioDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "istio_request_duration_milliseconds", Help: "Request duration.", Buckets: IstioBuckets}, istioLabels),
		l5dResp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "response_total", Help: "Total count of HTTP responses."},
			[]string{"direction", "namespace", "deployment", "pod", "pod_template_hash", "control_plane_ns", "authority", "target_addr", "tls", "server_id", "srv_kind", "srv_name", "route_kind", "route_name", "status_code", "classification", "error"}),
		l5dLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "response_latency_ms", Help: "Elapsed times between a request's headers being received and its response stream completing.", Buckets: LinkerdBuckets},
			[]string{"direction", "namespace", "deployment", "pod", "pod_template_hash", "control_plane_ns", "authority", "target_addr", "tls", "server_id", "srv_kind", "srv_name", "route_kind", "route_name", "status_code"}),
		hubbleReq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hubble_http_requests_total", Help: "Count of HTTP requests."},
			[]string{"method", "protocol", "reporter", "status", "source_namespace", "source_workload", "destination_namespace", "destination_workload"}),
		hubbleDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hubble_http_request_duration_seconds", Help: "Quantiles of HTTP request duration in seconds.", Buckets: HubbleBuckets},
			[]string{"method", "reporter", "source_namespace", "source_workload", "destination_namespace", "destination_workload"}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.istioReq, e.istioDur, e.l5dResp, e.l5dLat, e.hubbleReq, e.hubbleDur)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.tick()
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	e.Addr = l.Addr().String()
	return e
}

// tick adds one round of every workload's traffic.
func (e *Exporter) tick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.workloads {
		for code, n := range map[int]int{200: w.Requests - w.Errors, 503: w.Errors} {
			if n <= 0 {
				continue
			}
			e.istio(w, code, n)
			e.linkerd(w, code, n)
			e.hubble(w, code, n)
		}
	}
}

func (e *Exporter) istio(w Workload, code, n int) {
	svc := w.Name + "." + w.Namespace + ".svc.cluster.local"
	labels := func(reporter string, code int) prometheus.Labels {
		return prometheus.Labels{"reporter": reporter, "source_workload": "frontend", "source_workload_namespace": w.Namespace,
			"source_principal": "spiffe://cluster.local/ns/" + w.Namespace + "/sa/frontend", "source_app": "frontend", "source_version": "v1", "source_cluster": "Kubernetes",
			"destination_workload": w.Name, "destination_workload_namespace": w.Namespace,
			"destination_principal": "spiffe://cluster.local/ns/" + w.Namespace + "/sa/" + w.Name, "destination_app": w.Name, "destination_version": "v2",
			"destination_service": svc, "destination_service_name": w.Name, "destination_service_namespace": w.Namespace, "destination_cluster": "Kubernetes",
			"request_protocol": "http", "response_code": strconv.Itoa(code), "grpc_response_status": "", "response_flags": "-", "connection_security_policy": "mutual_tls"}
	}
	server := "destination"
	if w.Ambient {
		server = "waypoint"
	}
	e.istioReq.With(labels(server, code)).Add(float64(n))
	// The client side sees every request fail (e.g. its own timeouts):
	// counted, the built-ins would be wrong.
	e.istioReq.With(labels("source", 503)).Add(float64(n))
	for range n {
		e.istioDur.With(labels(server, code)).Observe(float64(w.Latency) / float64(time.Millisecond))
		e.istioDur.With(labels("source", 503)).Observe(60000)
	}
}

func (e *Exporter) linkerd(w Workload, code, n int) {
	class := "success"
	if code >= 500 {
		class = "failure"
	}
	in := prometheus.Labels{"direction": "inbound", "namespace": w.Namespace, "deployment": w.Name, "pod": w.Name + "-7d9f8b6c5-x2x9z", "pod_template_hash": "7d9f8b6c5",
		"control_plane_ns": "linkerd", "authority": "", "target_addr": "10.42.0.17:8080", "tls": "true", "server_id": "", "srv_kind": "default", "srv_name": "all-unauthenticated",
		"route_kind": "default", "route_name": "http", "status_code": strconv.Itoa(code)}
	out := prometheus.Labels{"direction": "outbound", "namespace": w.Namespace, "deployment": "frontend", "pod": "frontend-5c8d7f9b4-abcde", "pod_template_hash": "5c8d7f9b4",
		"control_plane_ns": "linkerd", "authority": w.Name + "." + w.Namespace + ".svc.cluster.local:8080", "target_addr": "10.42.0.17:8080", "tls": "true",
		"server_id": w.Name + "." + w.Namespace + ".serviceaccount.identity.linkerd.cluster.local", "srv_kind": "", "srv_name": "", "route_kind": "", "route_name": "", "status_code": "503"}
	e.l5dLat.With(in)
	respIn, respOut := prometheus.Labels{"classification": class, "error": ""}, prometheus.Labels{"classification": "failure", "error": ""}
	for k, v := range in {
		respIn[k] = v
	}
	for k, v := range out {
		respOut[k] = v
	}
	e.l5dResp.With(respIn).Add(float64(n))
	e.l5dResp.With(respOut).Add(float64(n))
	for range n {
		e.l5dLat.With(in).Observe(float64(w.Latency) / float64(time.Millisecond))
		e.l5dLat.With(out).Observe(60000)
	}
}

func (e *Exporter) hubble(w Workload, code, n int) {
	// Hubble sees each request on the client's and on the server's node.
	for _, reporter := range []string{"client", "server"} {
		e.hubbleReq.With(prometheus.Labels{"method": "GET", "protocol": "HTTP/1.1", "reporter": reporter, "status": strconv.Itoa(code),
			"source_namespace": w.Namespace, "source_workload": "frontend", "destination_namespace": w.Namespace, "destination_workload": w.Name}).Add(float64(n))
		d := e.hubbleDur.With(prometheus.Labels{"method": "GET", "reporter": reporter, "source_namespace": w.Namespace, "source_workload": "frontend",
			"destination_namespace": w.Namespace, "destination_workload": w.Name})
		for range n {
			d.Observe(w.Latency.Seconds())
		}
	}
}

// Quantile is what histogram_quantile(q, ...) returns for observations
// that all equal v: linear interpolation inside v's bucket.
func Quantile(q, v float64, buckets []float64) float64 {
	lo := 0.0
	for _, hi := range buckets {
		if v <= hi {
			return lo + (hi-lo)*q
		}
		lo = hi
	}
	return lo
}
