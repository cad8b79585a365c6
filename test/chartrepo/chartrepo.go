// Package chartrepo serves packaged Helm charts to Meshplane's tests from a
// directory: Serve starts an HTTP chart repository (index.yaml generated with
// Helm's repo package) and ServeOCI a minimal read-only OCI registry with
// Helm's media types. Both listen on 127.0.0.1 only, count requests per path
// so tests can assert caching, and stop when the test ends.
package chartrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// Option configures a server.
type Option func(*options)

type options struct {
	username, password string
	tls                bool
}

// WithBasicAuth requires HTTP basic authentication.
func WithBasicAuth(username, password string) Option {
	return func(o *options) { o.username, o.password = username, password }
}

// WithTLS serves HTTPS with a self-signed certificate (see Server.CAData).
func WithTLS() Option { return func(o *options) { o.tls = true } }

// counter counts requests per path.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *counter) hit(path string) {
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[path]++
	c.mu.Unlock()
}

// Count returns how many requests asked for path (e.g. "/index.yaml").
func (c *counter) Count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[path]
}

// Counts returns a copy of the request counts per path.
func (c *counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Server is an HTTP chart repository.
type Server struct {
	counter
	// URL is the repository URL (http://127.0.0.1:<port> or https://...).
	URL string
	// Dir is the directory of packaged charts served.
	Dir string
	// CAData is the PEM certificate of a WithTLS server.
	CAData []byte

	srv   *httptest.Server
	opts  options
	index []byte
	imu   sync.RWMutex
}

// Serve starts an HTTP chart repository for the .tgz charts in dir (and its
// direct subdirectories), with an index.yaml generated now; call Reindex
// after adding charts. It stops when the test ends.
func Serve(tb testing.TB, dir string, opts ...Option) *Server {
	tb.Helper()
	s := &Server{Dir: dir}
	for _, o := range opts {
		o(&s.opts)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.srv.Listener.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.srv.Listener = l
	if s.opts.tls {
		s.srv.StartTLS()
		s.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	} else {
		s.srv.Start()
	}
	tb.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	if err := s.Reindex(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Reindex regenerates index.yaml from the directory, as publishing does.
func (s *Server) Reindex() error {
	idx, err := repo.IndexDirectory(s.Dir, s.URL)
	if err != nil {
		return fmt.Errorf("indexing %s: %w", s.Dir, err)
	}
	idx.SortEntries()
	data, err := yaml.Marshal(idx)
	if err != nil {
		return err
	}
	s.imu.Lock()
	s.index = data
	s.imu.Unlock()
	return nil
}

// Close stops the server now (e.g. to make the repository unreachable).
func (s *Server) Close() { s.srv.Close() }

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.username == "" && s.opts.password == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.opts.username && p == s.opts.password
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.hit(r.URL.Path)
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == "/index.yaml" {
		s.imu.RLock()
		data := s.index
		s.imu.RUnlock()
		w.Header().Set("Content-Type", "application/x-yaml")
		_, _ = w.Write(data)
		return
	}
	rel := filepath.Clean(strings.TrimPrefix(r.URL.Path, "/"))
	if !strings.HasSuffix(rel, ".tgz") || strings.HasPrefix(rel, "..") {
		http.NotFound(w, r)
		return
	}
	http.ServeFile(w, r, filepath.Join(s.Dir, rel))
}

// UnreachableURL returns an http:// URL on 127.0.0.1 where nothing listens.
func UnreachableURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// Registry is a minimal read-only OCI registry holding Helm charts.
type Registry struct {
	counter
	// Host is 127.0.0.1:<port>.
	Host string
	// URL is the chart source URL, oci://<Host>/charts; a chart <name> is
	// the repository charts/<name>.
	URL string
	// Dir is the directory of packaged charts served.
	Dir string

	srv   *httptest.Server
	mu    sync.RWMutex
	repos map[string]*ociRepo // "charts/<name>"
	blobs map[string][]byte   // digest -> content
}

type ociRepo struct {
	tags map[string]string // tag -> manifest digest
}

// ServeOCI starts an OCI registry (plain HTTP, so sources need Insecure)
// serving the .tgz charts in dir; call Reindex after adding charts.
func ServeOCI(tb testing.TB, dir string) *Registry {
	tb.Helper()
	g := &Registry{Dir: dir}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serveHTTP))
	g.srv.Listener.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g.srv.Listener = l
	g.srv.Start()
	tb.Cleanup(g.srv.Close)
	g.Host = l.Addr().String()
	g.URL = "oci://" + g.Host + "/charts"
	if err := g.Reindex(); err != nil {
		tb.Fatal(err)
	}
	return g
}

// Close stops the registry now.
func (g *Registry) Close() { g.srv.Close() }

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ManifestMediaType is the OCI image manifest media type Helm charts use.
const ManifestMediaType = "application/vnd.oci.image.manifest.v1+json"

// Reindex rebuilds the registry content from the directory.
func (g *Registry) Reindex() error {
	files, err := filepath.Glob(filepath.Join(g.Dir, "*.tgz"))
	if err != nil {
		return err
	}
	repos := map[string]*ociRepo{}
	blobs := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		ch, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		cfg, err := json.Marshal(ch.Metadata)
		if err != nil {
			return err
		}
		m := manifest{
			SchemaVersion: 2,
			MediaType:     ManifestMediaType,
			Config:        descriptor{MediaType: registry.ConfigMediaType, Digest: digest(cfg), Size: len(cfg)},
			Layers:        []descriptor{{MediaType: registry.ChartLayerMediaType, Digest: digest(data), Size: len(data)}},
			Annotations: map[string]string{
				"org.opencontainers.image.title":   ch.Metadata.Name,
				"org.opencontainers.image.version": ch.Metadata.Version,
			},
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		blobs[digest(cfg)] = cfg
		blobs[digest(data)] = data
		blobs[digest(mb)] = mb
		name := "charts/" + ch.Metadata.Name
		if repos[name] == nil {
			repos[name] = &ociRepo{tags: map[string]string{}}
		}
		repos[name].tags[strings.ReplaceAll(ch.Metadata.Version, "+", "_")] = digest(mb)
	}
	g.mu.Lock()
	g.repos, g.blobs = repos, blobs
	g.mu.Unlock()
	return nil
}

func ociError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": errCode, "message": msg}}})
}

func (g *Registry) serveHTTP(w http.ResponseWriter, r *http.Request) {
	g.hit(r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		ociError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "read-only registry")
		return
	}
	p := r.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		_, _ = w.Write([]byte("{}"))
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	var name, kind, ref string
	switch {
	case strings.HasSuffix(rest, "/tags/list"):
		name, kind = strings.TrimSuffix(rest, "/tags/list"), "tags"
	case strings.Contains(rest, "/manifests/"):
		i := strings.LastIndex(rest, "/manifests/")
		name, kind, ref = rest[:i], "manifests", rest[i+len("/manifests/"):]
	case strings.Contains(rest, "/blobs/"):
		i := strings.LastIndex(rest, "/blobs/")
		name, kind, ref = rest[:i], "blobs", rest[i+len("/blobs/"):]
	default:
		http.NotFound(w, r)
		return
	}
	rp := g.repos[name]
	if rp == nil {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	switch kind {
	case "tags":
		tags := make([]string, 0, len(rp.tags))
		for t := range rp.tags {
			tags = append(tags, t)
		}
		sort.Strings(tags)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": name, "tags": tags})
	case "manifests":
		d := ref
		if !strings.HasPrefix(ref, "sha256:") {
			d = rp.tags[ref]
		}
		data, ok := g.blobs[d]
		if d == "" || !ok {
			ociError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", ManifestMediaType)
		w.Header().Set("Docker-Content-Digest", d)
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(data)
		}
	case "blobs":
		data, ok := g.blobs[ref]
		if !ok {
			ociError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", ref)
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(data)
		}
	}
}

// Start is Serve for programs without a testing.TB (the demo): a plain HTTP
// repository on 127.0.0.1 that runs until Close.
func Start(dir string) (*Server, error) {
	s := &Server{Dir: dir}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.srv.Listener.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
	if err := s.Reindex(); err != nil {
		s.srv.Close()
		return nil, err
	}
	return s, nil
}
