package trust

import (
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// chainPool holds the intermediates a TLS peer presents after its leaf.
func chainPool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// TestLeavesVerifyAcrossMembers: two members' intermediates of one root
// sign a server and a client certificate each; presented with their
// intermediate, each verifies against the root alone (the other member's
// trust), with the right usage and name, and not without the chain nor
// for the wrong usage or name.
func TestLeavesVerifyAcrossMembers(t *testing.T) {
	root := mustRoot(t, "root", "")
	east, west := mustIntermediate(t, root, "east"), mustIntermediate(t, root, "west")
	serverOpts := LeafOptions{CommonName: "clustermesh-apiserver.cilium.io", DNSNames: []string{"clustermesh-apiserver.cilium.io", "*.mesh.cilium.io"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1).To4()}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	clientOpts := LeafOptions{CommonName: "remote-west", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	server, err := IssueLeaf(east, serverOpts, now)
	if err != nil {
		t.Fatal(err)
	}
	client, err := IssueLeaf(west, clientOpts, now)
	if err != nil {
		t.Fatal(err)
	}
	roots := chainPool(root.Cert)
	at := now.Add(time.Hour)
	if _, err := server.Cert.Verify(x509.VerifyOptions{DNSName: "east.mesh.cilium.io", Roots: roots, Intermediates: chainPool(east.Cert), CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("east's server certificate does not verify against the root: %v", err)
	}
	if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: chainPool(west.Cert), CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("west's client certificate does not verify against the root: %v", err)
	}
	for what, o := range map[string]x509.VerifyOptions{
		"server without its chain":   {DNSName: "east.mesh.cilium.io", Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		"server under another name":  {DNSName: "east.example.com", Roots: roots, Intermediates: chainPool(east.Cert), CurrentTime: at},
		"server against west's CA":   {DNSName: "east.mesh.cilium.io", Roots: chainPool(west.Cert), CurrentTime: at},
		"client used as a server":    {Roots: roots, Intermediates: chainPool(west.Cert), CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		"client after its issuer":    {Roots: roots, Intermediates: chainPool(west.Cert), CurrentTime: west.Cert.NotAfter.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		"server with client's chain": {DNSName: "east.mesh.cilium.io", Roots: chainPool(west.Cert), Intermediates: chainPool(west.Cert), CurrentTime: at},
	} {
		leaf := server.Cert
		if what == "client used as a server" || what == "client after its issuer" {
			leaf = client.Cert
		}
		if _, err := leaf.Verify(o); err == nil {
			t.Errorf("%s verifies", what)
		}
	}
	if server.Cert.IsCA || !server.Cert.NotAfter.Equal(east.Cert.NotAfter) {
		t.Fatalf("server certificate: CA %v, expires %s, issuer %s", server.Cert.IsCA, server.Cert.NotAfter, east.Cert.NotAfter)
	}
}

// TestLeafMatches decides re-issuing: a leaf stays while it is what the
// options ask for under the current issuer; a new issuer (renewed or
// rotated), another name, alternative name or usage, or an expired leaf
// re-issues it.
func TestLeafMatches(t *testing.T) {
	root := mustRoot(t, "root", "")
	in := mustIntermediate(t, root, "east")
	o := LeafOptions{CommonName: "server", DNSNames: []string{"a.example", "b.example"}, IPAddresses: []net.IP{net.IPv6loopback},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf, err := IssueLeaf(in, o, now)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := IssueIntermediate(root, IntermediateOptions{CommonName: "meshplane-intermediate-east"}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other := o
	other.DNSNames = []string{"a.example", "c.example"}
	cn := o
	cn.CommonName = "client"
	usage := o
	usage.Usages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	ip := o
	ip.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, c := range []struct {
		name   string
		issuer *x509.Certificate
		o      LeafOptions
		at     time.Time
		want   bool
	}{
		{"unchanged", in.Cert, o, now.Add(time.Hour), true},
		{"new intermediate", renewed.Cert, o, now.Add(time.Hour), false},
		{"other DNS names", in.Cert, other, now.Add(time.Hour), false},
		{"other common name", in.Cert, cn, now.Add(time.Hour), false},
		{"other usage", in.Cert, usage, now.Add(time.Hour), false},
		{"other IP", in.Cert, ip, now.Add(time.Hour), false},
		{"expired", in.Cert, o, in.Cert.NotAfter, false},
		{"a CA is not a leaf", in.Cert, o, now.Add(time.Hour), false},
	} {
		cert := leaf.Cert
		if c.name == "a CA is not a leaf" {
			cert = in.Cert
		}
		if got := LeafMatches(cert, c.issuer, c.o, c.at); got != c.want {
			t.Errorf("%s: LeafMatches = %v, want %v", c.name, got, c.want)
		}
	}
}
