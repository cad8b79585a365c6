package helm

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Source says where a chart comes from. Exactly one of RepoURL or Path is set.
type Source struct {
	// RepoURL is an https:// or http:// repository with an index.yaml, or
	// oci://host/path.
	RepoURL string
	// Path is a local chart directory, a packaged .tgz, or a directory
	// holding several of either.
	Path string
	// Username and Password are basic-auth credentials (HTTP and OCI).
	Username, Password string
	// CAData is an extra PEM CA bundle trusted for HTTPS.
	CAData []byte
	// Insecure uses plain HTTP for OCI; it is only allowed on loopback hosts.
	Insecure bool
}

// Release is what Meshplane wants deployed.
type Release struct {
	Name, Namespace string
	// Chart is the chart name in the repository (ignored for a Path that is
	// a chart directory or a .tgz).
	Chart string
	// Version is the exact chart version.
	Version string
	Source  Source
	Values  map[string]any
	// Labels are extra release labels.
	Labels map[string]string
	// TakeOwnership lets Render and Validate of a release that does not
	// exist yet accept objects that exist outside any Helm release (a
	// mesh installed by its CLI), which Adopt then takes over; without
	// it such objects are a Conflict.
	TakeOwnership bool
}

// Action says what Ensure or Adopt did.
type Action string

// The actions.
const (
	ActionNone       Action = "None"
	ActionInstalled  Action = "Installed"
	ActionUpgraded   Action = "Upgraded"
	ActionRolledBack Action = "RolledBack"
	ActionAdopted    Action = "Adopted"
)

// Result is the outcome of Ensure or Adopt.
type Result struct {
	Action   Action
	Revision int
	// Manifest is the deployed manifest (templates, post-rendered).
	Manifest string
	// Objects lists every object in the manifest and the chart's crds/
	// directory.
	Objects []ObjectRef
}

// ObjectRef names one object of a release.
type ObjectRef struct{ Group, Version, Kind, Namespace, Name string }

// ReleaseInfo describes a deployed release.
type ReleaseInfo struct {
	Name, Namespace, Chart, ChartVersion, AppVersion, Status string
	Revision                                                 int
	// Values are the values the release was installed with (not merged with
	// the chart's defaults).
	Values   map[string]any
	Manifest string
	Objects  []ObjectRef
	Labels   map[string]string
}

// Options configure an Engine.
type Options struct {
	// CacheDir holds cached charts and indexes; a temporary directory when
	// empty.
	CacheDir string
	Logger   logr.Logger
	// Timeout is the default for waits when a call passes zero.
	Timeout time.Duration
	// IndexTTL is how long a repository index is reused; DefaultIndexTTL when
	// zero.
	IndexTTL time.Duration
	// HTTPClient fetches from HTTP repositories; a client with a 30 s timeout
	// when nil. Source.CAData is added to its transport per source.
	HTTPClient *http.Client
}

// DefaultIndexTTL is how long a repository index is reused by default.
const DefaultIndexTTL = 10 * time.Minute

// DefaultTimeout bounds waits when neither the call nor Options say.
const DefaultTimeout = 5 * time.Minute

// ErrReleaseNotFound is returned (wrapped) by Get when there is no deployed
// release.
var ErrReleaseNotFound = errors.New("helm release not found")

// Engine runs Helm operations against one cluster. It is safe for concurrent
// use; operations on the same release are serialised.
type Engine struct {
	cfg      *rest.Config
	log      logr.Logger
	timeout  time.Duration
	indexTTL time.Duration
	cacheDir string
	http     *http.Client

	dc     discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper

	locksMu sync.Mutex
	locks   map[string]*sync.Mutex

	sources *sourceCache

	equalMu sync.Mutex
	// equal remembers digests whose render equals a deployed revision:
	// "ns/name" -> digest -> revision.
	equal map[string]map[string]int
}

// New returns an Engine for the cluster behind cfg.
func New(cfg *rest.Config, opts Options) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("helm: nil rest.Config")
	}
	dir := opts.CacheDir
	if dir == "" {
		d, err := os.MkdirTemp("", "meshplane-helm-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("helm cache dir: %w", err)
	}
	dcClient, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc := memory.NewMemCacheClient(dcClient)
	e := &Engine{
		cfg:      rest.CopyConfig(cfg),
		log:      opts.Logger,
		timeout:  opts.Timeout,
		indexTTL: opts.IndexTTL,
		cacheDir: dir,
		http:     opts.HTTPClient,
		dc:       dc,
		mapper:   restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(dc), dc, nil),
		locks:    map[string]*sync.Mutex{},
		equal:    map[string]map[string]int{},
	}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	if e.indexTTL <= 0 {
		e.indexTTL = DefaultIndexTTL
	}
	if e.http == nil {
		e.http = &http.Client{Timeout: 30 * time.Second}
	}
	e.sources = newSourceCache(e)
	return e, nil
}

// lock serialises operations on one release.
func (e *Engine) lock(name, namespace string) func() {
	key := namespace + "/" + name
	e.locksMu.Lock()
	m, ok := e.locks[key]
	if !ok {
		m = &sync.Mutex{}
		e.locks[key] = m
	}
	e.locksMu.Unlock()
	m.Lock()
	return m.Unlock
}

// actionConfig returns a fresh Helm configuration for a namespace. It is
// cheap: the discovery cache and REST mapper are shared.
func (e *Engine) actionConfig(namespace string) (*action.Configuration, error) {
	c := action.NewConfiguration(action.ConfigurationSetLogger(logr.ToSlogHandler(e.log.WithName("helm"))))
	g := &restGetter{cfg: e.cfg, dc: e.dc, mapper: e.mapper, namespace: namespace}
	if err := c.Init(g, namespace, "secret"); err != nil {
		return nil, err
	}
	if kc, ok := c.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	return c, nil
}

func (e *Engine) waitTimeout(timeout time.Duration) time.Duration {
	if timeout > 0 {
		return timeout
	}
	return e.timeout
}

// restGetter is a genericclioptions.RESTClientGetter built from the
// operator's rest.Config, with a shared discovery cache.
type restGetter struct {
	cfg       *rest.Config
	dc        discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	namespace string
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.dc, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return clientcmd.NewDefaultClientConfig(*clientcmdapi.NewConfig(), &clientcmd.ConfigOverrides{
		Context: clientcmdapi.Context{Namespace: g.namespace},
	})
}
