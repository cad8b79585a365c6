package cluster

import (
	"context"
	"crypto/tls"
	_ "embed" // kwok stages
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kwokStages is the Stage configuration of the kwok controller: how fake
// nodes and pods progress. See kwok-stages.yaml.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// Component names of a simulated cluster; their logs are <Dir>/logs/<name>.log.
const (
	ComponentEtcd                  = "etcd"
	ComponentKubeAPIServer         = "kube-apiserver"
	ComponentKubeControllerManager = "kube-controller-manager"
	ComponentKubeScheduler         = "kube-scheduler"
	ComponentKwok                  = "kwok"
)

// Fake nodes: kwok manages the nodes that carry KwokNodeAnnotation.
const (
	// KwokNodeAnnotation marks the nodes the kwok controller manages.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	// KwokNodeLabel is a label key whose value is "kwok" on every fake node,
	// for node selectors and affinities.
	KwokNodeLabel = "type"
	// KwokNodeIP is the InternalIP of every fake node. It is a loopback
	// address, so a kube-apiserver call to a "kubelet" (logs, exec) ends on
	// this machine, like its service calls.
	KwokNodeIP = "127.0.0.1"
	// KwokPodCIDR is the range kwok gives pod IPs from. Nothing ever
	// connects to them: there is no kube-proxy and no pod network.
	KwokPodCIDR = "10.244.0.0/16"
)

// EnvKeepClusterDir, set to "true", keeps the temporary directory of a
// simulated cluster (its logs, etcd data, credentials) after Stop.
const EnvKeepClusterDir = "MESHPLANE_KEEP_CLUSTER_DIR"

// SimulatedOptions configures a simulated cluster.
type SimulatedOptions struct {
	// Nodes is the number of fake nodes; zero means one.
	Nodes int
	// Dir holds logs, credentials, etcd data and the kubeconfig. Empty means
	// a temporary directory, removed by Stop; a given Dir is left in place.
	Dir string
	// CRDs, if set, are installed before StartSimulated returns. Mesh charts
	// bring their own CRDs, so by default none are installed.
	CRDs *CRDOptions
	// StartTimeout bounds the whole start; zero means two minutes (a start
	// takes a few seconds on an idle machine).
	StartTimeout time.Duration
}

// Simulated is a running simulated cluster: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a kwok controller that plays
// kubelet for fake nodes. Deployments, ReplicaSets, Jobs, DaemonSets,
// namespaces, service accounts, garbage collection and EndpointSlices behave
// as in a real cluster; containers never run.
type Simulated struct {
	// Dir is the cluster directory.
	Dir string
	// KubeconfigPath is an admin kubeconfig (group system:masters).
	KubeconfigPath string
	// Config is the admin REST config.
	Config *rest.Config
	// Nodes are the names of the fake nodes.
	Nodes []string
	// KeepDir keeps a temporary Dir after Stop, e.g. when a test failed.
	KeepDir bool

	tempDir  bool
	procs    map[string]*process
	stopOnce sync.Once
	stopErr  error
}

// StartSimulated starts a simulated cluster from the binaries in BinDir and
// returns once its nodes are Ready and untainted, controllers and scheduler
// are healthy, and the default ServiceAccount exists. Every process listens
// on 127.0.0.1 only, on free ports; kube-apiserver and
// kube-controller-manager use ServiceCIDR. Binaries missing from BinDir
// produce an error wrapping ErrAssetsMissing. If the start fails, everything
// is stopped and the cluster directory is kept for its logs.
func StartSimulated(opts SimulatedOptions) (*Simulated, error) {
	bins, err := RequireBinaries(BinEtcd, BinKubeAPIServer, BinKubeControllerManager, BinKubeScheduler, BinKwok)
	if err != nil {
		return nil, err
	}
	if opts.Nodes < 0 {
		return nil, fmt.Errorf("StartSimulated: negative node count %d", opts.Nodes)
	}
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	var crdDirs []string
	if opts.CRDs != nil {
		// Resolved first, so missing CRDs fail before anything starts.
		if crdDirs, err = opts.CRDs.Dirs(); err != nil {
			return nil, err
		}
	}

	s := &Simulated{Dir: opts.Dir, procs: map[string]*process{}}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "meshplane-simulated-"); err != nil {
			return nil, err
		}
		s.tempDir = true
	} else if s.Dir, err = filepath.Abs(s.Dir); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	if err := s.start(ctx, bins, opts.Nodes); err != nil {
		s.KeepDir = true
		_ = s.Stop()
		return nil, fmt.Errorf("starting simulated cluster (logs in %s): %w", filepath.Join(s.Dir, "logs"), err)
	}
	if len(crdDirs) > 0 {
		if err := InstallCRDs(s.Config, CRDOptions{SkipMeshplaneCRDs: true, NoThirdParty: true, ExtraDirs: crdDirs}); err != nil {
			s.KeepDir = true
			_ = s.Stop()
			return nil, fmt.Errorf("installing CRDs into simulated cluster (logs in %s): %w", filepath.Join(s.Dir, "logs"), err)
		}
	}
	return s, nil
}

func (s *Simulated) start(ctx context.Context, bins map[string]string, nodes int) error {
	pkiDir := filepath.Join(s.Dir, "pki")
	logDir := filepath.Join(s.Dir, "logs")
	kwokDir := filepath.Join(s.Dir, "kwok")
	for _, d := range []string{logDir, kwokDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// etcd's data directory must be new: a kept Dir from an earlier run
	// must not leak its objects into this cluster.
	etcdDir := filepath.Join(s.Dir, "etcd")
	if err := os.RemoveAll(etcdDir); err != nil {
		return err
	}
	creds, err := newPKI(pkiDir)
	if err != nil {
		return fmt.Errorf("creating credentials: %w", err)
	}
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	host := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

	s.KubeconfigPath = filepath.Join(s.Dir, "kubeconfig")
	s.Config = &rest.Config{
		Host: "https://" + host(apiPort),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   creds.caPEM,
			CertData: creds.adminCertPEM,
			KeyData:  creds.adminPK,
		},
		QPS:   1000,
		Burst: 2000,
	}
	if err := writeKubeconfig(s.KubeconfigPath, s.Config); err != nil {
		return err
	}
	schedConfig := filepath.Join(s.Dir, "kube-scheduler.yaml")
	if err := os.WriteFile(schedConfig, fmt.Appendf(nil, schedulerConfig, s.KubeconfigPath), 0o644); err != nil {
		return err
	}
	stagesPath := filepath.Join(kwokDir, "stages.yaml")
	if err := os.WriteFile(stagesPath, kwokStages, 0o644); err != nil {
		return err
	}

	// etcd
	etcdURL := "http://" + host(etcdPort)
	peerURL := "http://" + host(peerPort)
	if err := s.run(ComponentEtcd, bins[BinEtcd], nil, logDir,
		"--name=simulated",
		"--data-dir="+etcdDir,
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=simulated="+peerURL,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	); err != nil {
		return err
	}
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := s.waitHealthy(ctx, plain, ComponentEtcd, etcdURL+"/health"); err != nil {
		return err
	}

	// kube-apiserver
	if err := s.run(ComponentKubeAPIServer, bins[BinKubeAPIServer], nil, logDir,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+pkiDir,
		"--tls-cert-file="+creds.servingCert,
		"--tls-private-key-file="+creds.servKey,
		"--client-ca-file="+creds.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+creds.saPublic,
		"--service-account-signing-key-file="+creds.saPrivate,
		"--service-cluster-ip-range="+loopbackAPIServerArgs["service-cluster-ip-range"],
		"--advertise-address="+loopbackAPIServerArgs["advertise-address"],
		"--endpoint-reconciler-type="+loopbackAPIServerArgs["endpoint-reconciler-type"],
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		// Tests create objects by the thousand; the server must not throttle.
		"--enable-priority-and-fairness=false",
		"--max-requests-inflight=0",
		"--max-mutating-requests-inflight=0",
		"--profiling=false",
	); err != nil {
		return err
	}
	adminTLS, err := rest.TLSConfigFor(s.Config)
	if err != nil {
		return err
	}
	admin := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: adminTLS}}
	if err := s.waitHealthy(ctx, admin, ComponentKubeAPIServer, s.Config.Host+"/readyz"); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		return err
	}
	if err := s.createNodes(ctx, cs, nodes); err != nil {
		return err
	}

	// Controllers, scheduler and kwok only need the API server.
	if err := s.run(ComponentKubeControllerManager, bins[BinKubeControllerManager], nil, logDir,
		"--kubeconfig="+s.KubeconfigPath,
		"--authentication-kubeconfig="+s.KubeconfigPath,
		"--authorization-kubeconfig="+s.KubeconfigPath,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		"--leader-elect=false",
		"--service-cluster-ip-range="+ServiceCIDR,
		"--allocate-node-cidrs=false",
		"--root-ca-file="+creds.caCert,
		"--service-account-private-key-file="+creds.saPrivate,
		"--cluster-signing-cert-file="+creds.caCert,
		"--cluster-signing-key-file="+creds.caKey,
		"--use-service-account-credentials=false",
		"--kube-api-qps=1000",
		"--kube-api-burst=2000",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := s.run(ComponentKubeScheduler, bins[BinKubeScheduler], nil, logDir,
		"--config="+schedConfig,
		"--authentication-kubeconfig="+s.KubeconfigPath,
		"--authorization-kubeconfig="+s.KubeconfigPath,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
	); err != nil {
		return err
	}
	// KWOK_WORKDIR keeps kwok away from a developer's ~/.kwok/kwok.yaml.
	if err := s.run(ComponentKwok, bins[BinKwok], []string{"KWOK_WORKDIR=" + kwokDir}, logDir,
		"--kubeconfig="+s.KubeconfigPath,
		"--config="+stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+KwokNodeAnnotation+"=fake",
		"--node-ip="+KwokNodeIP,
		"--cidr="+KwokPodCIDR,
		"--node-lease-duration-seconds=40",
	); err != nil {
		return err
	}

	// The components' serving certificates are self-signed in memory; these
	// probes only go to 127.0.0.1.
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe
	}}
	if err := s.waitHealthy(ctx, probe, ComponentKubeControllerManager, "https://"+host(kcmPort)+"/healthz"); err != nil {
		return err
	}
	if err := s.waitHealthy(ctx, probe, ComponentKubeScheduler, "https://"+host(schedPort)+"/healthz"); err != nil {
		return err
	}
	if err := poll(ctx, 200*time.Millisecond, "nodes to be Ready and untainted", func(ctx context.Context) (bool, error) {
		if err := s.alive(); err != nil {
			return false, err
		}
		return nodesReady(ctx, cs, s.Nodes)
	}); err != nil {
		return err
	}
	return poll(ctx, 200*time.Millisecond, "the default ServiceAccount", func(ctx context.Context) (bool, error) {
		if err := s.alive(); err != nil {
			return false, err
		}
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

// schedulerConfig is the KubeSchedulerConfiguration; %s is the kubeconfig.
const schedulerConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 1000
  burst: 2000
leaderElection:
  leaderElect: false
`

// run starts a component and records it for Stop.
func (s *Simulated) run(name, bin string, env []string, logDir string, args ...string) error {
	p, err := startProcess(name, bin, args, env, logDir)
	if err != nil {
		return err
	}
	s.procs[name] = p
	return nil
}

// alive returns a permanent error if a component has exited.
func (s *Simulated) alive() error {
	for _, p := range s.procs {
		if p.exited() {
			return permanentError{p.exitError()}
		}
	}
	return nil
}

// waitHealthy polls url until it answers 200, failing early if a component
// exits.
func (s *Simulated) waitHealthy(ctx context.Context, c *http.Client, name, url string) error {
	err := poll(ctx, 100*time.Millisecond, name+" to be healthy", func(ctx context.Context) (bool, error) {
		if err := s.alive(); err != nil {
			return false, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, permanentError{err}
		}
		resp, err := c.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return true, nil
	})
	if err != nil && !errors.As(err, new(permanentError)) {
		if p := s.procs[name]; p != nil {
			err = fmt.Errorf("%w; log %s:\n%s", err, p.logPath, tail(p.logPath, 20))
		}
	}
	return err
}

// createNodes creates the fake nodes kwok manages.
func (s *Simulated) createNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Annotations: map[string]string{
					KwokNodeAnnotation:             "fake",
					"node.alpha.kubernetes.io/ttl": "0",
				},
				Labels: map[string]string{
					KwokNodeLabel:                    "kwok",
					corev1.LabelHostname:             name,
					corev1.LabelOSStable:             "linux",
					corev1.LabelArchStable:           "amd64",
					"node-role.kubernetes.io/worker": "",
				},
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
		s.Nodes = append(s.Nodes, name)
	}
	return nil
}

// nodesReady reports whether every named node is Ready and carries none of
// the node.kubernetes.io/* taints the node lifecycle controller sets.
func nodesReady(ctx context.Context, cs kubernetes.Interface, names []string) (bool, error) {
	for _, name := range names {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, fmt.Errorf("node %s is not Ready", name)
		}
		for _, t := range node.Spec.Taints {
			if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
				return false, fmt.Errorf("node %s has taint %s", name, t.Key)
			}
		}
	}
	return true, nil
}

// LogPath returns the log file of a component (ComponentEtcd, ...).
func (s *Simulated) LogPath(component string) string {
	return filepath.Join(s.Dir, "logs", component+".log")
}

// Stop stops every component (kwok, scheduler and controllers first, then
// kube-apiserver, then etcd) and removes the cluster directory if it is a
// temporary one, unless KeepDir or $MESHPLANE_KEEP_CLUSTER_DIR=true. It is
// safe to call more than once.
func (s *Simulated) Stop() error {
	s.stopOnce.Do(func() {
		const grace = 10 * time.Second
		stopAll := func(names ...string) {
			var wg sync.WaitGroup
			for _, name := range names {
				if p := s.procs[name]; p != nil {
					wg.Go(func() { p.stop(grace) })
				}
			}
			wg.Wait()
		}
		stopAll(ComponentKwok, ComponentKubeScheduler, ComponentKubeControllerManager)
		stopAll(ComponentKubeAPIServer)
		stopAll(ComponentEtcd)
		if s.tempDir && !s.KeepDir && os.Getenv(EnvKeepClusterDir) != "true" {
			s.stopErr = os.RemoveAll(s.Dir)
		}
	})
	return s.stopErr
}

// writeKubeconfig writes a kubeconfig with the credentials of cfg embedded.
func writeKubeconfig(path string, cfg *rest.Config) error {
	const name = "meshplane-simulated"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	return clientcmd.WriteToFile(*kc, path)
}
