package cluster

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServiceCIDR is the service range of every API server this package starts.
// It is a loopback range, so that calls the API server makes to Services
// (admission webhooks, aggregated APIs) end on this machine and never reach
// another address. kube-controller-manager gets the same range.
const ServiceCIDR = "127.96.0.0/16"

// loopback is the range every service range must stay inside.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// loopbackAPIServerArgs keep every address a kube-apiserver hands out on
// loopback: the service range, and the address it advertises for itself.
// The endpoint reconcilers refuse a loopback address, so the kubernetes
// Service gets no endpoints; nothing in these clusters needs them, and the
// server then does not depend on the host having a routable interface.
var loopbackAPIServerArgs = map[string]string{
	"service-cluster-ip-range": ServiceCIDR,
	"advertise-address":        "127.0.0.1",
	"endpoint-reconciler-type": "none",
}

// EnvtestOptions configures an envtest API server.
type EnvtestOptions struct {
	// CRDs selects the CRDs installed before StartEnvtest returns.
	CRDs CRDOptions
	// APIServerArgs are further kube-apiserver flags, by name without dashes,
	// set after this package's defaults. service-cluster-ip-range may only be
	// changed to another loopback range.
	APIServerArgs map[string][]string
	// StartTimeout bounds the start of etcd and of kube-apiserver, each;
	// zero means one minute.
	StartTimeout time.Duration
	// LogDir, if set, receives etcd.log and kube-apiserver.log. Otherwise the
	// output of both is discarded (envtest's default), unless
	// KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true attaches it to the test's
	// output.
	LogDir string
}

// Server is a running envtest control plane: one etcd and one kube-apiserver
// with the selected CRDs installed.
type Server struct {
	// Config authenticates as an administrator (group system:masters).
	Config *rest.Config
	// KubeConfig is a kubeconfig equivalent to Config, e.g. for the kubeconfig
	// Secrets of multi-cluster tests.
	KubeConfig []byte
	// Env is the underlying envtest environment.
	Env *envtest.Environment

	logs     []io.Closer
	stopOnce sync.Once
	stopErr  error
}

// StartEnvtest starts an envtest control plane (etcd and kube-apiserver from
// BinDir) with the CRDs opts selects, and returns its admin REST config and a
// function that stops it. Binaries missing from BinDir produce an error
// wrapping ErrAssetsMissing. kubectl is not needed.
func StartEnvtest(opts EnvtestOptions) (*rest.Config, func() error, error) {
	s, err := StartServer(opts)
	if err != nil {
		return nil, nil, err
	}
	return s.Config, s.Stop, nil
}

// StartServer is StartEnvtest returning the Server, which also carries a
// kubeconfig.
func StartServer(opts EnvtestOptions) (*Server, error) {
	bins, err := RequireBinaries(BinKubeAPIServer, BinEtcd)
	if err != nil {
		return nil, err
	}
	dirs, err := opts.CRDs.Dirs()
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = time.Minute
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    filepath.Dir(bins[BinKubeAPIServer]),
		CRDDirectoryPaths:        dirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: timeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Explicit paths: KUBEBUILDER_ASSETS or TEST_ASSET_* left over from other
	// projects must not swap in binaries of another Kubernetes version. envtest
	// resolves a kubectl path too, but never runs it.
	api := env.ControlPlane.GetAPIServer()
	api.Path = bins[BinKubeAPIServer]
	env.ControlPlane.Etcd = &envtest.Etcd{Path: bins[BinEtcd]}
	env.ControlPlane.KubectlPath = filepath.Join(filepath.Dir(bins[BinKubeAPIServer]), "kubectl")

	args := api.Configure()
	for name, value := range loopbackAPIServerArgs {
		args.Set(name, value)
	}
	for name, values := range opts.APIServerArgs {
		if name == "service-cluster-ip-range" {
			if err := checkLoopbackRange(values); err != nil {
				return nil, err
			}
		}
		args.Set(name, values...)
	}

	s := &Server{Env: env}
	if opts.LogDir != "" {
		if err := s.attachLogs(opts.LogDir); err != nil {
			return nil, err
		}
	}
	cfg, err := env.Start()
	if err != nil {
		// Start leaves the processes running when the CRDs fail to install.
		_ = s.Stop()
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	s.Config = cfg
	s.KubeConfig = env.KubeConfig
	return s, nil
}

// attachLogs sends the output of etcd and kube-apiserver to files in dir.
func (s *Server) attachLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	open := func(name string) (*os.File, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err == nil {
			s.logs = append(s.logs, f)
		}
		return f, err
	}
	etcdLog, err := open("etcd.log")
	if err != nil {
		return err
	}
	apiLog, err := open("kube-apiserver.log")
	if err != nil {
		return errors.Join(err, s.closeLogs())
	}
	s.Env.ControlPlane.Etcd.Out, s.Env.ControlPlane.Etcd.Err = etcdLog, etcdLog
	api := s.Env.ControlPlane.GetAPIServer()
	api.Out, api.Err = apiLog, apiLog
	return nil
}

func (s *Server) closeLogs() error {
	var errs []error
	for _, c := range s.logs {
		errs = append(errs, c.Close())
	}
	s.logs = nil
	return errors.Join(errs...)
}

// Stop stops kube-apiserver and etcd and removes their temporary directories.
// It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = errors.Join(s.Env.Stop(), s.closeLogs())
	})
	return s.stopErr
}

// Multi is a set of independent envtest control planes, each with its own
// etcd, for multi-cluster tests.
type Multi struct {
	// Servers are the control planes, in start order.
	Servers []*Server
}

// StartMulti starts n independent envtest control planes concurrently, each
// with the CRDs opts selects. If one fails, the others are stopped. With
// opts.LogDir set, each server logs into a numbered subdirectory of it.
func StartMulti(n int, opts EnvtestOptions) (*Multi, error) {
	if n < 1 {
		return nil, fmt.Errorf("StartMulti: need at least one server, got %d", n)
	}
	// Fail once, not n times, for missing assets.
	if _, err := RequireBinaries(BinKubeAPIServer, BinEtcd); err != nil {
		return nil, err
	}
	if _, err := opts.CRDs.Dirs(); err != nil {
		return nil, err
	}
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		o := opts
		if opts.LogDir != "" {
			o.LogDir = filepath.Join(opts.LogDir, fmt.Sprintf("server-%d", i))
		}
		wg.Go(func() {
			servers[i], errs[i] = StartServer(o)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("server %d: %w", i, errs[i])
			}
		})
	}
	wg.Wait()
	m := &Multi{}
	for _, s := range servers {
		if s != nil {
			m.Servers = append(m.Servers, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, m.Stop())
	}
	return m, nil
}

// Configs returns the admin REST config of every server.
func (m *Multi) Configs() []*rest.Config {
	cfgs := make([]*rest.Config, len(m.Servers))
	for i, s := range m.Servers {
		cfgs[i] = s.Config
	}
	return cfgs
}

// Stop stops every server concurrently.
func (m *Multi) Stop() error {
	errs := make([]error, len(m.Servers))
	var wg sync.WaitGroup
	for i, s := range m.Servers {
		wg.Go(func() { errs[i] = s.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkLoopbackRange rejects service ranges outside 127.0.0.0/8.
func checkLoopbackRange(values []string) error {
	for _, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("service-cluster-ip-range %q: %w", v, err)
		}
		if !loopback.Contains(p.Addr()) || p.Bits() < loopback.Bits() {
			return fmt.Errorf("service-cluster-ip-range %q is not a loopback range: API servers started for tests must keep their services inside %s", v, loopback)
		}
	}
	return nil
}
