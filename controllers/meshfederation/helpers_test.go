package meshfederation_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/test/testenv"
)

// tcpProxy forwards a loopback port to an API server, and can be cut (the
// cluster becomes unreachable) and restored on the same port.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) start() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return nil
}

func (p *tcpProxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// cut closes the listener and every open connection.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func mustCreate(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// remoteKubeconfig grants a ServiceAccount on the member exactly
// meshfederation.RemoteRBAC for the mesh, and returns a kubeconfig with a
// token of that ServiceAccount pointing at server (a proxy in front of the
// member's API server).
func remoteKubeconfig(t *testing.T, cfg *rest.Config, w mesh.FederationTrust, server string) []byte {
	t.Helper()
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	const saNS, saName = "meshplane-remote", "meshplane-federation"
	mustCreate(t, c, ns(saNS), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNS, Name: saName}})
	mustCreate(t, c, meshfederation.RemoteRBAC(w, "", saNS, saName)...)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(saNS).CreateToken(ctx, saName, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["member"] = &clientcmdapi.Cluster{Server: "https://" + server, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["meshplane"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["member"] = &clientcmdapi.Context{Cluster: "member", AuthInfo: "meshplane"}
	kc.CurrentContext = "member"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// hostPort returns the host:port of a REST config's server.
func hostPort(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		if u, err = url.Parse("https://" + cfg.Host); err != nil {
			t.Fatalf("server %q: %v", cfg.Host, err)
		}
	}
	return u.Host
}
