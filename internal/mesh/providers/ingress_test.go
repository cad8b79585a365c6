package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

var (
	httpListener  = meshv1alpha1.IngressListener{Name: "http", Port: 80, Protocol: meshv1alpha1.IngressHTTP}
	httpsListener = meshv1alpha1.IngressListener{Name: "https", Port: 443, Protocol: meshv1alpha1.IngressHTTPS,
		Hostname: "*.shop.example.com", CertificateRefs: []meshv1alpha1.LocalObjectReference{{Name: "shop-tls"}, {Name: "shop-tls-ecdsa"}}}
)

func igSpec(mod func(s *meshv1alpha1.IngressGatewaySpec), ls ...meshv1alpha1.IngressListener) meshv1alpha1.IngressGatewaySpec {
	s := meshv1alpha1.IngressGatewaySpec{Listeners: ls}
	if mod != nil {
		mod(&s)
	}
	return s
}

// ingressCases are the IngressGateway features, one golden file per mesh.
// On Linkerd a case without a class gets class envoy-gateway, except
// igw-no-class, which pins Linkerd's refusal.
var ingressCases = []struct {
	name string
	spec meshv1alpha1.IngressGatewaySpec
}{
	{"igw-http", igSpec(nil, httpListener)},
	{"igw-https", igSpec(func(s *meshv1alpha1.IngressGatewaySpec) {
		s.RouteNamespaces = meshv1alpha1.IngressRoutesAll
		s.Infrastructure = &meshv1alpha1.IngressInfrastructure{Labels: map[string]string{"team": "shop"},
			Annotations: map[string]string{"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}}
	}, httpListener, httpsListener)},
	{"igw-injection-disabled", igSpec(func(s *meshv1alpha1.IngressGatewaySpec) { s.MeshInjection = meshv1alpha1.MeshInjectionDisabled }, httpListener)},
	{"igw-other-class", igSpec(func(s *meshv1alpha1.IngressGatewaySpec) { s.GatewayClassName = "envoy-gateway" }, httpListener)},
	{"igw-mesh-class", igSpec(func(s *meshv1alpha1.IngressGatewaySpec) { s.GatewayClassName = "istio" }, httpListener)},
	{"igw-no-class", igSpec(nil, httpListener)},
}

// installed is a scope of provider p installed by a MeshInstall with every
// Gateway API setting on, in a sidecar namespace (Istio) or its own data
// plane.
func installed(p meshv1alpha1.Provider) mesh.Scope {
	s := mesh.Scope{Install: mesh.InstallFacts{Provider: p, MeshInstall: strings.ToLower(string(p)), GatewayAPI: true, Envoy: true,
		GatewayAPICRDs: true, Version: "1.28.0"}, Namespace: sidecarFacts}
	switch p {
	case meshv1alpha1.ProviderLinkerd:
		s.Install.Version, s.Namespace.Mode = "2.18.0", mesh.LinkerdProxy
	case meshv1alpha1.ProviderCilium:
		s.Install.Version, s.Namespace.Mode = "1.19.5", mesh.CiliumNode
	}
	return s
}

// acceptedClass is a class that exists and is accepted.
func acceptedClass(name string) (mesh.GatewayClassFacts, error) {
	return mesh.GatewayClassFacts{Name: name, Exists: true, Accepted: true, Controller: "example.com/" + name}, nil
}

// ingressScenarios are the install and class refusals, per mesh.
var ingressScenarios = []struct {
	name  string
	mod   func(s *mesh.Scope)
	class func(string) (mesh.GatewayClassFacts, error)
}{
	{"igw-gateway-api-off", func(s *mesh.Scope) { s.Install.GatewayAPI = false }, acceptedClass},
	{"igw-envoy-off", func(s *mesh.Scope) { s.Install.Envoy = false }, acceptedClass},
	{"igw-no-crds", func(s *mesh.Scope) { s.Install.GatewayAPICRDs = false }, acceptedClass},
	{"igw-class-missing", nil, func(name string) (mesh.GatewayClassFacts, error) { return mesh.GatewayClassFacts{Name: name}, nil }},
	{"igw-class-not-accepted", nil, func(name string) (mesh.GatewayClassFacts, error) {
		return mesh.GatewayClassFacts{Name: name, Exists: true, Controller: "example.com/gateway", Reason: "InvalidParameters",
			Message: "parametersRef not found"}, nil
	}},
	{"igw-ambient", func(s *mesh.Scope) {
		if s.Install.Provider == meshv1alpha1.ProviderIstio {
			s.Install.Profile, s.Namespace = meshv1alpha1.ProfileAmbient, ambientNoWaypoint
		}
	}, acceptedClass},
}

func ingressGateway(p meshv1alpha1.Provider, name string, spec meshv1alpha1.IngressGatewaySpec) *meshv1alpha1.IngressGateway {
	g := &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: *spec.DeepCopy()}
	if p == meshv1alpha1.ProviderLinkerd && g.Spec.GatewayClassName == "" && name != "igw-no-class" {
		g.Spec.GatewayClassName = "envoy-gateway"
	}
	return g
}

// translateIngressAll decides every case and scenario on every mesh,
// through the pipeline the controller runs (Registry.TranslateIngress).
func translateIngressAll(t *testing.T) []translation {
	t.Helper()
	reg := Registry()
	var out []translation
	for _, p := range meshv1alpha1.Providers {
		suffix := "." + strings.ToLower(string(p))
		for _, tc := range ingressCases {
			objs, _, err := reg.TranslateIngress(ingressGateway(p, tc.name, tc.spec), installed(p), acceptedClass)
			out = append(out, translation{golden: tc.name + suffix, objs: objs, err: err})
		}
		for _, sc := range ingressScenarios {
			s := installed(p)
			if sc.mod != nil {
				sc.mod(&s)
			}
			objs, _, err := reg.TranslateIngress(ingressGateway(p, sc.name, ingressCases[1].spec), s, sc.class)
			out = append(out, translation{golden: sc.name + suffix, objs: objs, err: err})
		}
	}
	return out
}

func TestIngressTranslationGolden(t *testing.T) {
	first := translateIngressAll(t)
	again := translateIngressAll(t)
	for i, tr := range first {
		t.Run(tr.golden, func(t *testing.T) {
			got := render(t, tr)
			if render(t, again[i]) != got {
				t.Fatalf("translation of %s is not deterministic", tr.golden)
			}
			path := filepath.Join("testdata", tr.golden+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -run TestIngressTranslationGolden -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestIngressRefusals pins every refused case: the reason and the words
// of the message a user acts on; every other case translates.
func TestIngressRefusals(t *testing.T) {
	type refusal struct {
		reason string
		words  []string
	}
	uf := meshv1alpha1.UnsupportedFeatureReason
	inv, cls := meshv1alpha1.InvalidSpecReason, meshv1alpha1.GatewayClassNotAcceptedReason
	want := map[string]refusal{
		"igw-injection-disabled.istio":   {uf, []string{"IngressOutsideMesh", "spec.meshInjection Disabled", "Istio proxy"}},
		"igw-injection-disabled.cilium":  {uf, []string{"IngressOutsideMesh", "spec.meshInjection Disabled", "node Envoy"}},
		"igw-other-class.istio":          {inv, []string{"spec.gatewayClassName envoy-gateway", "class istio"}},
		"igw-other-class.cilium":         {inv, []string{"spec.gatewayClassName envoy-gateway", "class cilium"}},
		"igw-mesh-class.cilium":          {inv, []string{"spec.gatewayClassName istio", "class cilium"}},
		"igw-mesh-class.linkerd":         {},
		"igw-no-class.linkerd":           {inv, []string{"spec.gatewayClassName is required on Linkerd", "ships no ingress", "Envoy Gateway"}},
		"igw-gateway-api-off.cilium":     {uf, []string{"IngressGateway", "MeshInstall cilium", "spec.cilium.gatewayAPI and spec.cilium.envoy"}},
		"igw-envoy-off.cilium":           {uf, []string{"IngressGateway", "spec.cilium.gatewayAPI and spec.cilium.envoy"}},
		"igw-no-crds.istio":              {uf, []string{"IngressGateway", "install the Gateway API CRDs"}},
		"igw-no-crds.linkerd":            {uf, []string{"IngressGateway", "install the Gateway API CRDs"}},
		"igw-no-crds.cilium":             {uf, []string{"IngressGateway", "install the Gateway API CRDs"}},
		"igw-class-missing.istio":        {cls, []string{"GatewayClass istio does not exist", "istiod creates GatewayClass istio"}},
		"igw-class-missing.cilium":       {cls, []string{"GatewayClass cilium does not exist", "gatewayAPI.enabled"}},
		"igw-class-missing.linkerd":      {cls, []string{"GatewayClass envoy-gateway does not exist", "Linkerd ships no ingress"}},
		"igw-class-not-accepted.istio":   {cls, []string{"GatewayClass istio (controller example.com/gateway) is not accepted", "InvalidParameters: parametersRef not found"}},
		"igw-class-not-accepted.linkerd": {cls, []string{"GatewayClass envoy-gateway", "is not accepted"}},
		"igw-class-not-accepted.cilium":  {cls, []string{"GatewayClass cilium", "is not accepted"}},
	}
	// Linkerd with class istio is a user's choice (an Istio gateway of its
	// own, injected by Linkerd): translated.
	delete(want, "igw-mesh-class.linkerd")
	for _, tr := range translateIngressAll(t) {
		w, refused := want[tr.golden]
		if !refused {
			if tr.err != nil {
				t.Errorf("%s: unexpected error %v", tr.golden, tr.err)
			}
			continue
		}
		if tr.err == nil {
			t.Errorf("%s: translated, want a refusal naming %v", tr.golden, w.words)
			continue
		}
		for _, word := range append(w.words, "nothing was applied") {
			if !strings.Contains(tr.err.Error(), word) {
				t.Errorf("%s: message does not name %q: %v", tr.golden, word, tr.err)
			}
		}
		term, ok := outcome.AsTerminal(tr.err)
		if !ok || term.StalledReason() != w.reason {
			t.Errorf("%s: not terminal %s: %v", tr.golden, w.reason, tr.err)
		}
		var ufe *mesh.UnsupportedFeatureError
		if (w.reason == uf) != errors.As(tr.err, &ufe) {
			t.Errorf("%s: UnsupportedFeatureError mismatch: %v", tr.golden, tr.err)
		}
	}
}

// TestIngressOutputsAcceptedByRealCRDs creates every translated Gateway on
// an envtest API server with the real Gateway API CRDs and strict field
// validation.
func TestIngressOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	applied := 0
	for i, tr := range translateIngressAll(t) {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("ingress-golden-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			if err := ApplyStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
			applied++
		}
	}
	if applied < 10 {
		t.Fatalf("only %d Gateways applied", applied)
	}
}

// TestIngressOutputKindsCoverTranslations: every output is of a kind its
// mesh declares, so the controller watches it.
func TestIngressOutputKindsCoverTranslations(t *testing.T) {
	reg := Registry()
	if n := len(reg.IngressOutputKinds()); n != 1 {
		t.Fatalf("registry lists %d ingress output kinds, want Gateway once", n)
	}
	for _, tr := range translateIngressAll(t) {
		for _, o := range tr.objs {
			if gvk := o.GetObjectKind().GroupVersionKind().String(); gvk != "gateway.networking.k8s.io/v1, Kind=Gateway" {
				t.Errorf("%s: undeclared output kind %s", tr.golden, gvk)
			}
		}
	}
}
