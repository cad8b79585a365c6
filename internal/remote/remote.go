package remote

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// DefaultKey is the Secret key of the kubeconfig when the reference names
// none; "value" is accepted as well.
const DefaultKey = "kubeconfig"

// DefaultTimeout bounds every request to a member cluster.
const DefaultTimeout = 10 * time.Second

// Cache builds and keeps one client per kubeconfig Secret.
type Cache struct {
	// Scheme of the clients.
	Scheme *runtime.Scheme
	// Timeout bounds each request; DefaultTimeout when zero.
	Timeout time.Duration
	// Wrap, if set, wraps every client built (tests count requests with
	// controller-runtime's interceptor).
	Wrap func(client.Client) client.Client

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	sum    [32]byte
	client client.Client
	host   string
}

// InvalidKubeconfigError says why a kubeconfig Secret cannot be used. It is
// terminal for the member: only a new Secret fixes it.
type InvalidKubeconfigError struct {
	Secret  string
	Problem string
}

// Error names the Secret and the problem.
func (e *InvalidKubeconfigError) Error() string {
	return fmt.Sprintf("kubeconfig Secret %s: %s", e.Secret, e.Problem)
}

// StalledReason makes the error terminal with reason InvalidSpec.
func (e *InvalidKubeconfigError) StalledReason() string { return meshv1alpha1.InvalidSpecReason }

// KubeconfigData returns the kubeconfig bytes of s under key (DefaultKey,
// then "value", when key is empty).
func KubeconfigData(s *corev1.Secret, key string) ([]byte, error) {
	name := s.Namespace + "/" + s.Name
	if key != "" {
		if d, ok := s.Data[key]; ok && len(d) > 0 {
			return d, nil
		}
		return nil, &InvalidKubeconfigError{Secret: name, Problem: fmt.Sprintf("has no key %q", key)}
	}
	for _, k := range []string{DefaultKey, "value"} {
		if d, ok := s.Data[k]; ok && len(d) > 0 {
			return d, nil
		}
	}
	return nil, &InvalidKubeconfigError{Secret: name, Problem: `has neither key "kubeconfig" nor "value"`}
}

// RESTConfig parses a kubeconfig, refusing plugins and file references,
// and returns its current context's REST config with timeout set.
func RESTConfig(secret string, data []byte, timeout time.Duration) (*rest.Config, error) {
	bad := func(format string, args ...any) error {
		return &InvalidKubeconfigError{Secret: secret, Problem: fmt.Sprintf(format, args...)}
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, bad("not a kubeconfig: %v", err)
	}
	ctxName := cfg.CurrentContext
	kctx, ok := cfg.Contexts[ctxName]
	if !ok {
		if len(cfg.Contexts) != 1 {
			return nil, bad("current-context %q is not defined (and there is not exactly one context)", ctxName)
		}
		for n, c := range cfg.Contexts {
			ctxName, kctx = n, c
		}
	}
	cl, ok := cfg.Clusters[kctx.Cluster]
	if !ok {
		return nil, bad("context %q names cluster %q, which is not defined", ctxName, kctx.Cluster)
	}
	if cl.CertificateAuthority != "" {
		return nil, bad("cluster %q references the file %q; use certificate-authority-data", kctx.Cluster, cl.CertificateAuthority)
	}
	if u, err := url.Parse(cl.Server); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, bad("cluster %q has no valid server URL %q", kctx.Cluster, cl.Server)
	}
	ai, ok := cfg.AuthInfos[kctx.AuthInfo]
	if !ok {
		return nil, bad("context %q names user %q, which is not defined", ctxName, kctx.AuthInfo)
	}
	switch {
	case ai.Exec != nil:
		return nil, bad("user %q runs the exec plugin %q; Meshplane does not run commands from kubeconfigs, use a ServiceAccount token", kctx.AuthInfo, ai.Exec.Command)
	case ai.AuthProvider != nil:
		return nil, bad("user %q uses the auth-provider plugin %q; use a ServiceAccount token", kctx.AuthInfo, ai.AuthProvider.Name)
	case ai.ClientCertificate != "" || ai.ClientKey != "" || ai.TokenFile != "":
		return nil, bad("user %q references files; use client-certificate-data, client-key-data or token", kctx.AuthInfo)
	case ai.Impersonate != "" || len(ai.ImpersonateGroups) > 0:
		return nil, bad("user %q impersonates; bind the RBAC to the token's identity instead", kctx.AuthInfo)
	}
	// Only the selected context is kept, so nothing else is consulted.
	only := clientcmdapi.NewConfig()
	only.Clusters[kctx.Cluster] = cl
	only.AuthInfos[kctx.AuthInfo] = ai
	only.Contexts[ctxName] = kctx
	only.CurrentContext = ctxName
	rc, err := clientcmd.NewDefaultClientConfig(*only, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, bad("%v", err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rc.Timeout = timeout
	rc.QPS, rc.Burst = 20, 40
	rc.UserAgent = "meshplane-federation"
	return rc, nil
}

// Client returns the client for the kubeconfig in s (under key), building
// it when s is new or its kubeconfig changed.
func (c *Cache) Client(s *corev1.Secret, key string) (client.Client, error) {
	name := s.Namespace + "/" + s.Name
	data, err := KubeconfigData(s, key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[name]; ok && e.sum == sum {
		return e.client, nil
	}
	rc, err := RESTConfig(name, data, c.Timeout)
	if err != nil {
		return nil, err
	}
	// No discovery here: the client maps kinds lazily, so building it never
	// blocks on an unreachable cluster.
	cl, err := client.New(rc, client.Options{Scheme: c.Scheme})
	if err != nil {
		return nil, &InvalidKubeconfigError{Secret: name, Problem: err.Error()}
	}
	if c.Wrap != nil {
		cl = c.Wrap(cl)
	}
	if c.entries == nil {
		c.entries = map[string]entry{}
	}
	c.entries[name] = entry{sum: sum, client: cl, host: rc.Host}
	return cl, nil
}

// Forget drops the client of a Secret (when it is deleted).
func (c *Cache) Forget(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, namespace+"/"+name)
}

// Len is the number of cached clients.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// IsUnreachable reports whether err means the cluster did not answer
// (connection refused or reset, timeout, DNS failure, discovery failure),
// as opposed to an answer of the API server such as Forbidden or Conflict.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsServiceUnavailable(err)
	}
	return true
}
