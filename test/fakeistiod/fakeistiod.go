// Package fakeistiod serves Istio's sidecar-injection webhook in-process for
// tests on the simulated cluster, where no istiod runs. Pointed at by the
// fixture istiod chart's injector.url value, it lets the API server's own
// webhook selection (namespace labels, revision tags) decide which revision
// injects a pod, exactly as with a real istiod, and records the decision the
// way Istio does: the pod gets the label istio.io/rev=<revision> and the
// sidecar.istio.io/status annotation.
//
// A failure rule keeps chosen pods from ever becoming Ready (an unsatisfiable
// node selector keeps them Pending), to fail a migration's health gate.
package fakeistiod

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// UnschedulableKey is the node-selector key a failing pod gets; no node
// has it.
const UnschedulableKey = "fakeistiod.meshplane.io/never"

// Injector is a running fake injector.
type Injector struct {
	// URL is the base URL for the chart's injector.url value.
	URL string
	// CABundle is the base64 PEM CA bundle for injector.caBundle.
	CABundle string
	// Injected counts injections per revision.
	injected sync.Map
	fail     atomic.Value // func(rev string, pod *corev1.Pod, ns string) bool
}

// Start serves the injector on 127.0.0.1 until the test ends.
func Start(tb testing.TB) *Injector {
	tb.Helper()
	inj, stop, err := Run()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return inj
}

// Run serves the injector on 127.0.0.1 until stop is called.
func Run() (inj *Injector, stop func(), err error) {
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	inj = &Injector{URL: "https://" + ln.Addr().String(), CABundle: base64.StdEncoding.EncodeToString(caPEM)}
	inj.fail.Store(func(string, *corev1.Pod, string) bool { return false })
	mux := http.NewServeMux()
	mux.HandleFunc("/inject/", inj.inject)
	mux.HandleFunc("/validate", allow)
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return inj, func() { _ = srv.Close() }, nil
}

// FailWhen sets the failure rule: pods it matches never become Ready.
func (inj *Injector) FailWhen(f func(revision string, pod *corev1.Pod, namespace string) bool) {
	inj.fail.Store(f)
}

// Injected returns how many pods a revision injected.
func (inj *Injector) Injected(revision string) int64 {
	v, ok := inj.injected.Load(revision)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (inj *Injector) inject(w http.ResponseWriter, r *http.Request) {
	rev := strings.TrimPrefix(r.URL.Path, "/inject/")
	if i := strings.IndexByte(rev, '/'); i >= 0 {
		rev = rev[:i]
	}
	review, ok := readReview(w, r)
	if !ok {
		return
	}
	var pod corev1.Pod
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err == nil && review.Request.Kind.Kind == "Pod" {
		var ops []map[string]any
		if pod.Labels == nil {
			ops = append(ops, map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]string{}})
		}
		if pod.Annotations == nil {
			ops = append(ops, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
		}
		ops = append(ops,
			map[string]any{"op": "add", "path": "/metadata/labels/istio.io~1rev", "value": rev},
			map[string]any{"op": "add", "path": "/metadata/annotations/sidecar.istio.io~1status", "value": `{"containers":["istio-proxy"],"revision":"` + rev + `"}`})
		if inj.fail.Load().(func(string, *corev1.Pod, string) bool)(rev, &pod, review.Request.Namespace) {
			if pod.Spec.NodeSelector == nil {
				ops = append(ops, map[string]any{"op": "add", "path": "/spec/nodeSelector", "value": map[string]string{}})
			}
			ops = append(ops, map[string]any{"op": "add", "path": "/spec/nodeSelector/" + strings.ReplaceAll(UnschedulableKey, "/", "~1"), "value": "true"})
		}
		patch, _ := json.Marshal(ops)
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
		c, _ := inj.injected.LoadOrStore(rev, &atomic.Int64{})
		c.(*atomic.Int64).Add(1)
	}
	writeReview(w, review, resp)
}

func allow(w http.ResponseWriter, r *http.Request) {
	review, ok := readReview(w, r)
	if !ok {
		return
	}
	writeReview(w, review, &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true})
}

func readReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, bool) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad admission review", http.StatusBadRequest)
		return nil, false
	}
	return &review, true
}

func writeReview(w http.ResponseWriter, in *admissionv1.AdmissionReview, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{TypeMeta: in.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// selfSigned makes a serving certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake-istiod"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return cert, certPEM, err
}
