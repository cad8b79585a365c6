package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// maxArchiveSize bounds a downloaded chart archive or index.
const maxArchiveSize = 64 << 20

// sourceCache caches repository indexes and chart archives.
type sourceCache struct {
	e *Engine

	mu       sync.Mutex
	indexes  map[string]*cachedIndex
	archives map[string][]byte // verified archive bytes by key
	// fetchMus serialise network fetches per source, so that concurrent
	// loads fetch once and a slow source does not hold up the others.
	fetchMus map[string]*sync.Mutex
}

// fetchLock locks fetches from one source.
func (s *sourceCache) fetchLock(src Source) func() {
	key := strings.TrimSuffix(src.RepoURL, "/")
	s.mu.Lock()
	m := s.fetchMus[key]
	if m == nil {
		m = &sync.Mutex{}
		s.fetchMus[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

type cachedIndex struct {
	index   *repo.IndexFile
	fetched time.Time
}

func newSourceCache(e *Engine) *sourceCache {
	return &sourceCache{e: e, indexes: map[string]*cachedIndex{}, archives: map[string][]byte{}, fetchMus: map[string]*sync.Mutex{}}
}

// Load fetches (cached) and loads a chart. A missing chart or version is
// terminal (ChartUnavailable, naming chart, version, source and the versions
// available); an unreachable repository is a transient error. Each call
// returns a chart of its own, safe to mutate.
func (e *Engine) Load(ctx context.Context, chart, version string, src Source) (*chartv2.Chart, error) {
	switch {
	case src.RepoURL != "" && src.Path != "":
		return nil, outcome.Stalled(meshv1alpha1.ChartUnavailableReason, "chart source sets both a repository URL (%s) and a path (%s): set exactly one", src.RepoURL, src.Path)
	case src.Path != "":
		return loadPath(chart, version, src.Path)
	case strings.HasPrefix(src.RepoURL, "oci://"):
		return e.sources.loadOCI(ctx, chart, version, src)
	case strings.HasPrefix(src.RepoURL, "http://"), strings.HasPrefix(src.RepoURL, "https://"):
		return e.sources.loadHTTP(ctx, chart, version, src)
	case src.RepoURL == "":
		return nil, outcome.Stalled(meshv1alpha1.ChartUnavailableReason, "chart %s %s has no source: set a repository URL or a path", chart, version)
	default:
		return nil, outcome.Stalled(meshv1alpha1.ChartUnavailableReason, "chart repository URL %q has an unsupported scheme: use https://, http:// or oci://", src.RepoURL)
	}
}

func chartUnavailable(format string, args ...any) error {
	return outcome.Stalled(meshv1alpha1.ChartUnavailableReason, format, args...)
}

// ---- local paths ----

func loadPath(name, version, path string) (*chartv2.Chart, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, chartUnavailable("chart path %s does not exist", path)
		}
		return nil, err
	}
	if !fi.IsDir() || isChartDir(path) {
		ch, err := loader.Load(path)
		if err != nil {
			return nil, chartUnavailable("chart at %s cannot be loaded: %v", path, err)
		}
		if version != "" && ch.Metadata.Version != version {
			return nil, chartUnavailable("chart %s at %s has version %s, not the requested %s", ch.Metadata.Name, path, ch.Metadata.Version, version)
		}
		return ch, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, ent := range entries {
		p := filepath.Join(path, ent.Name())
		chartDir := ent.IsDir() && isChartDir(p)
		archive := !ent.IsDir() && strings.HasSuffix(ent.Name(), ".tgz")
		if !chartDir && !archive {
			continue
		}
		// Skip archives whose file name cannot be this chart.
		if !ent.IsDir() && !strings.HasPrefix(ent.Name(), name+"-") {
			continue
		}
		ch, err := loader.Load(p)
		if err != nil || ch.Metadata == nil || ch.Metadata.Name != name {
			continue
		}
		if ch.Metadata.Version == version {
			return ch, nil
		}
		versions = append(versions, ch.Metadata.Version)
	}
	if len(versions) == 0 {
		return nil, chartUnavailable("chart %s not found in directory %s", name, path)
	}
	sort.Strings(versions)
	return nil, chartUnavailable("chart %s version %s not found in directory %s; versions available: %s", name, version, path, strings.Join(versions, ", "))
}

func isChartDir(p string) bool {
	_, err := os.Stat(filepath.Join(p, "Chart.yaml"))
	return err == nil
}

// ---- HTTP repositories ----

func (s *sourceCache) httpClient(src Source) (*http.Client, error) {
	if len(src.CAData) == 0 {
		return s.e.http, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(src.CAData) {
		return nil, chartUnavailable("the CA data of chart source %s holds no PEM certificate", src.RepoURL)
	}
	base, _ := s.e.http.Transport.(*http.Transport)
	if base == nil {
		base, _ = http.DefaultTransport.(*http.Transport)
	}
	tr := base.Clone()
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	c := *s.e.http
	c.Transport = tr
	return &c, nil
}

func (s *sourceCache) get(ctx context.Context, src Source, rawURL string) ([]byte, int, error) {
	client, err := s.httpClient(src)
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, err
	}
	if src.Username != "" || src.Password != "" {
		base, _ := url.Parse(src.RepoURL)
		if base != nil && req.URL.Host == base.Host {
			req.SetBasicAuth(src.Username, src.Password)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxArchiveSize+1))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if len(data) > maxArchiveSize {
		return nil, resp.StatusCode, fmt.Errorf("%s is larger than %d bytes", rawURL, maxArchiveSize)
	}
	return data, resp.StatusCode, nil
}

// index returns the repository index, fetched at most every IndexTTL, or
// now when force is set.
func (s *sourceCache) index(ctx context.Context, src Source, force bool) (*repo.IndexFile, error) {
	key := strings.TrimSuffix(src.RepoURL, "/")
	defer s.fetchLock(src)()
	s.mu.Lock()
	c := s.indexes[key]
	s.mu.Unlock()
	if c != nil && !force && time.Since(c.fetched) < s.e.indexTTL {
		return c.index, nil
	}
	u := key + "/index.yaml"
	data, code, err := s.get(ctx, src, u)
	if err != nil {
		return nil, fmt.Errorf("fetching chart repository index %s: %w", u, err)
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return nil, chartUnavailable("chart repository %s refused the credentials (HTTP %d): check the chart source's username and password", src.RepoURL, code)
	case code == http.StatusNotFound:
		return nil, chartUnavailable("chart repository %s has no index.yaml (HTTP 404): check the repository URL", src.RepoURL)
	case code != http.StatusOK:
		return nil, fmt.Errorf("fetching chart repository index %s: HTTP %d", u, code)
	}
	idx := &repo.IndexFile{}
	if err := yaml.Unmarshal(data, idx); err != nil {
		return nil, chartUnavailable("chart repository index %s is not valid: %v", u, err)
	}
	idx.SortEntries()
	s.mu.Lock()
	s.indexes[key] = &cachedIndex{index: idx, fetched: time.Now()}
	s.mu.Unlock()
	s.e.log.V(1).Info("fetched chart repository index", "repository", src.RepoURL, "charts", len(idx.Entries))
	return idx, nil
}

func findVersion(idx *repo.IndexFile, name, version string) *repo.ChartVersion {
	for _, cv := range idx.Entries[name] {
		if cv != nil && cv.Metadata != nil && cv.Version == version && !cv.Removed {
			return cv
		}
	}
	return nil
}

func availableVersions(idx *repo.IndexFile, name string) []string {
	var out []string
	for _, cv := range idx.Entries[name] {
		if cv != nil && cv.Metadata != nil && !cv.Removed {
			out = append(out, cv.Version)
		}
	}
	return out
}

func (s *sourceCache) loadHTTP(ctx context.Context, name, version string, src Source) (*chartv2.Chart, error) {
	idx, err := s.index(ctx, src, false)
	if err != nil {
		return nil, err
	}
	cv := findVersion(idx, name, version)
	if cv == nil {
		// The version may have been published since the index was read.
		if idx, err = s.index(ctx, src, true); err != nil {
			return nil, err
		}
		if cv = findVersion(idx, name, version); cv == nil {
			avail := availableVersions(idx, name)
			if len(avail) == 0 {
				return nil, chartUnavailable("chart %s not found in repository %s", name, src.RepoURL)
			}
			return nil, chartUnavailable("chart %s version %s not found in repository %s; versions available: %s", name, version, src.RepoURL, strings.Join(avail, ", "))
		}
	}
	data, err := s.archive(ctx, src, cv)
	if err != nil {
		return nil, err
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, chartUnavailable("chart %s version %s from %s is not a valid chart archive: %v", name, version, src.RepoURL, err)
	}
	if ch.Metadata.Name != name || ch.Metadata.Version != version {
		return nil, chartUnavailable("the archive of chart %s version %s in repository %s holds chart %s version %s", name, version, src.RepoURL, ch.Metadata.Name, ch.Metadata.Version)
	}
	return ch, nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// archive returns the verified archive bytes of a chart version, from memory,
// the disk cache or the repository.
func (s *sourceCache) archive(ctx context.Context, src Source, cv *repo.ChartVersion) ([]byte, error) {
	key := strings.TrimSuffix(src.RepoURL, "/") + "|" + cv.Name + "|" + cv.Version + "|" + cv.Digest
	s.mu.Lock()
	data, ok := s.archives[key]
	s.mu.Unlock()
	if ok {
		return data, nil
	}
	dir := filepath.Join(s.e.cacheDir, "repos", hashString(strings.TrimSuffix(src.RepoURL, "/")))
	file := filepath.Join(dir, fmt.Sprintf("%s-%s.tgz", cv.Name, cv.Version))
	if b, err := os.ReadFile(file); err == nil && cv.Digest != "" && digestOf(b) == cv.Digest {
		s.remember(key, b)
		return b, nil
	}
	if len(cv.URLs) == 0 {
		return nil, chartUnavailable("chart %s version %s in repository %s lists no download URL", cv.Name, cv.Version, src.RepoURL)
	}
	u, err := repo.ResolveReferenceURL(src.RepoURL, cv.URLs[0])
	if err != nil {
		return nil, chartUnavailable("chart %s version %s in repository %s has an invalid URL %q: %v", cv.Name, cv.Version, src.RepoURL, cv.URLs[0], err)
	}
	unlock := s.fetchLock(src)
	s.mu.Lock()
	cached, ok := s.archives[key]
	s.mu.Unlock()
	if ok {
		// Fetched by a concurrent load while this one waited.
		unlock()
		return cached, nil
	}
	b, code, err := s.get(ctx, src, u)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("downloading chart %s version %s from %s: %w", cv.Name, cv.Version, u, err)
	}
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		return nil, chartUnavailable("chart repository %s refused the credentials for %s (HTTP %d): check the chart source's username and password", src.RepoURL, u, code)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("downloading chart %s version %s from %s: HTTP %d", cv.Name, cv.Version, u, code)
	}
	if cv.Digest != "" && digestOf(b) != cv.Digest {
		// Drop the index: a republished chart gets a new digest, and the
		// next load re-reads the index before trying again.
		s.mu.Lock()
		delete(s.indexes, strings.TrimSuffix(src.RepoURL, "/"))
		s.mu.Unlock()
		return nil, chartUnavailable("chart %s version %s downloaded from %s has sha256 digest %s but the repository index says %s: the archive was tampered with or corrupted; it was refused", cv.Name, cv.Version, u, digestOf(b), cv.Digest)
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err == nil {
			_ = os.Rename(tmp, file)
		}
	}
	s.remember(key, b)
	return b, nil
}

func (s *sourceCache) remember(key string, data []byte) {
	s.mu.Lock()
	s.archives[key] = data
	s.mu.Unlock()
}

// ---- OCI registries ----

func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *sourceCache) loadOCI(ctx context.Context, name, version string, src Source) (*chartv2.Chart, error) {
	base := strings.TrimSuffix(strings.TrimPrefix(src.RepoURL, "oci://"), "/")
	u, err := url.Parse("oci://" + base)
	if err != nil || u.Host == "" {
		return nil, chartUnavailable("chart repository URL %q is not a valid OCI reference", src.RepoURL)
	}
	if src.Insecure && !isLoopbackHost(u.Host) {
		return nil, chartUnavailable("chart source %s asks for plain HTTP, which is only allowed for loopback registries: use TLS (and a CA) for %s", src.RepoURL, u.Host)
	}
	repoRef := base + "/" + name
	tag := strings.ReplaceAll(version, "+", "_")
	key := "oci://" + repoRef + ":" + tag
	s.mu.Lock()
	data, ok := s.archives[key]
	s.mu.Unlock()
	if !ok {
		client, err := s.registryClient(src)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		unlock := s.fetchLock(src)
		data, err = s.pullOCI(client, src, repoRef, name, version, tag)
		unlock()
		if err != nil {
			return nil, err
		}
		s.remember(key, data)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, chartUnavailable("chart %s version %s from %s is not a valid chart archive: %v", name, version, src.RepoURL, err)
	}
	if ch.Metadata.Name != name || ch.Metadata.Version != version {
		return nil, chartUnavailable("the OCI artifact %s:%s holds chart %s version %s", repoRef, tag, ch.Metadata.Name, ch.Metadata.Version)
	}
	return ch, nil
}

func (s *sourceCache) pullOCI(client *registry.Client, src Source, repoRef, name, version, tag string) ([]byte, error) {
	tags, err := client.Tags(repoRef)
	if err != nil {
		if isNotFound(err) {
			return nil, chartUnavailable("chart %s not found in OCI registry %s: %v", name, src.RepoURL, err)
		}
		return nil, fmt.Errorf("listing versions of %s: %w", repoRef, err)
	}
	found := false
	for _, t := range tags {
		if t == tag {
			found = true
			break
		}
	}
	if !found {
		if len(tags) == 0 {
			return nil, chartUnavailable("chart %s not found in OCI registry %s", name, src.RepoURL)
		}
		return nil, chartUnavailable("chart %s version %s not found in OCI registry %s; versions available: %s", name, version, src.RepoURL, strings.Join(tags, ", "))
	}
	res, err := client.Pull(repoRef+":"+tag, registry.PullOptWithChart(true))
	if err != nil {
		if isNotFound(err) {
			return nil, chartUnavailable("chart %s version %s not found in OCI registry %s: %v", name, version, src.RepoURL, err)
		}
		return nil, fmt.Errorf("pulling %s:%s: %w", repoRef, tag, err)
	}
	if res.Chart == nil || len(res.Chart.Data) == 0 {
		return nil, chartUnavailable("OCI artifact %s:%s holds no chart layer", repoRef, tag)
	}
	return res.Chart.Data, nil
}

func isNotFound(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "not found") || strings.Contains(msg, "404") || strings.Contains(msg, "name unknown")
}

func (s *sourceCache) registryClient(src Source) (*registry.Client, error) {
	hc, err := s.httpClient(src)
	if err != nil {
		return nil, err
	}
	opts := []registry.ClientOption{
		registry.ClientOptHTTPClient(hc),
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(s.e.cacheDir, "registry-config.json")),
	}
	if src.Insecure {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	if src.Username != "" || src.Password != "" {
		opts = append(opts, registry.ClientOptBasicAuth(src.Username, src.Password))
	}
	return registry.NewClient(opts...)
}
