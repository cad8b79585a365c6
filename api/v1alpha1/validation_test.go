package v1alpha1_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

// These tests create objects on a real kube-apiserver with Meshplane's
// generated CRDs, so the OpenAPI bounds and CEL rules are checked by the
// same code that checks them in production, and the messages users see are
// the ones asserted here.

var k8s client.Client

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	srv, err := cluster.StartServer(cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	if err != nil {
		if !errors.Is(err, cluster.ErrAssetsMissing) || os.Getenv(cluster.EnvCI) == "true" {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "skipping API validation tests:", err)
		os.Exit(0)
	}
	k8s, err = client.New(srv.Config, client.Options{Scheme: scheme.New()})
	if err == nil {
		for _, ns := range []string{"shop", "monitoring"} {
			obj := mustParse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns)
			if err = k8s.Create(context.Background(), obj); err != nil {
				break
			}
		}
	}
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	_ = srv.Stop()
	os.Exit(code)
}

func mustParse(doc string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		panic(fmt.Sprintf("bad test YAML: %v\n%s", err, doc))
	}
	return u
}

// Valid bases; each invalid case starts from one and changes a few fields.
const (
	meshInstall = `
apiVersion: meshplane.io/v1alpha1
kind: MeshInstall
metadata: {name: NAME}
spec:
  provider: Istio
  version: 1.28.1
`
	meshRevision = `
apiVersion: meshplane.io/v1alpha1
kind: MeshRevision
metadata: {name: NAME}
spec:
  meshInstallRef: {name: istio}
  version: 1.29.0
`
	trafficSplit = `
apiVersion: meshplane.io/v1alpha1
kind: TrafficSplit
metadata: {name: NAME, namespace: shop}
spec:
  service: {name: reviews, port: 9080}
  backends:
    - {name: reviews-v1, weight: 80}
    - {name: reviews-v2, weight: 20}
`
	zeroTrust = `
apiVersion: meshplane.io/v1alpha1
kind: ZeroTrustPolicy
metadata: {name: NAME, namespace: shop}
spec:
  rules:
    - from: [{namespaces: [monitoring]}]
`
	egress = `
apiVersion: meshplane.io/v1alpha1
kind: EgressPolicy
metadata: {name: NAME, namespace: shop}
spec:
  rules:
    - hosts: [api.example.com]
      ports: [{number: 443, protocol: TLS}]
`
	canary = `
apiVersion: meshplane.io/v1alpha1
kind: Canary
metadata: {name: NAME, namespace: shop}
spec:
  targetRef: {name: podinfo}
  service: {port: 9898}
  analysis:
    stepWeight: 10
    maxWeight: 50
`
	federation = `
apiVersion: meshplane.io/v1alpha1
kind: MeshFederation
metadata: {name: NAME}
spec:
  root: {generate: {}}
  clusters:
    - {name: local, provider: Istio}
`
	breakGlass = `
apiVersion: meshplane.io/v1alpha1
kind: BreakGlass
metadata: {name: NAME}
spec:
  reason: istiod down
  target: {provider: Istio}
`
)

// set returns a mutation that sets a nested field (dot path; "a.b.0.c"
// indexes lists) to a YAML value; the value "DELETE" removes the field.
func set(path, value string) func(map[string]any) {
	return func(obj map[string]any) {
		parts := strings.Split(path, ".")
		var cur any = obj
		for i, p := range parts {
			last := i == len(parts)-1
			switch c := cur.(type) {
			case map[string]any:
				if last {
					if value == "DELETE" {
						delete(c, p)
						return
					}
					var v any
					if err := yaml.Unmarshal([]byte(value), &v); err != nil {
						panic(err)
					}
					c[p] = v
					return
				}
				if _, ok := c[p]; !ok {
					c[p] = map[string]any{}
				}
				cur = c[p]
			case []any:
				var idx int
				fmt.Sscanf(p, "%d", &idx)
				if last {
					var v any
					_ = yaml.Unmarshal([]byte(value), &v)
					c[idx] = v
					return
				}
				cur = c[idx]
			}
		}
	}
}

type invalidCase struct {
	name string
	base string
	// create holds mutations applied before the create that must fail.
	create []func(map[string]any)
	// update, when set, makes the create succeed and the update fail.
	update []func(map[string]any)
	// want are substrings of the API server's message.
	want []string
}

func invalidCases() []invalidCase {
	return []invalidCase{
		// MeshInstall
		{name: "meshinstall unknown provider", base: meshInstall, create: []func(map[string]any){set("spec.provider", "Kuma")},
			want: []string{`spec.provider: Unsupported value: "Kuma"`, `"Istio", "Linkerd", "Cilium"`}},
		{name: "meshinstall missing version", base: meshInstall, create: []func(map[string]any){set("spec.version", "DELETE")},
			want: []string{"spec.version: Required value"}},
		{name: "meshinstall malformed version", base: meshInstall, create: []func(map[string]any){set("spec.version", "latest")},
			want: []string{"spec.version: Invalid value", "should match"}},
		{name: "meshinstall ambient on linkerd", base: meshInstall,
			create: []func(map[string]any){set("spec.provider", "Linkerd"), set("spec.version", "edge-26.1.1"), set("spec.profile", "Ambient")},
			want:   []string{"profile Ambient is only supported by provider Istio"}},
		{name: "meshinstall revision-based on cilium", base: meshInstall,
			create: []func(map[string]any){set("spec.provider", "Cilium"), set("spec.upgrade", "{strategy: RevisionBased}")},
			want:   []string{"upgrade.strategy RevisionBased is only supported by provider Istio"}},
		{name: "meshinstall istio settings on linkerd", base: meshInstall,
			create: []func(map[string]any){set("spec.provider", "Linkerd"), set("spec.istio", "{revision: stable}")},
			want:   []string{"spec.istio may only be set when provider is Istio"}},
		{name: "meshinstall cilium settings on istio", base: meshInstall, create: []func(map[string]any){set("spec.cilium", "{mutualAuth: true}")},
			want: []string{"spec.cilium may only be set when provider is Cilium"}},
		{name: "meshinstall both chart repository and path", base: meshInstall,
			create: []func(map[string]any){set("spec.chart", "{repository: 'https://charts.example', path: /charts}")},
			want:   []string{"set at most one of repository and path"}},
		{name: "meshinstall chart repository scheme", base: meshInstall,
			create: []func(map[string]any){set("spec.chart", "{repository: 'ftp://charts.example'}")},
			want:   []string{"spec.chart.repository: Invalid value"}},
		{name: "meshinstall chart repository with credentials", base: meshInstall,
			create: []func(map[string]any){set("spec.chart", "{repository: 'https://admin:s3cret@charts.example/stable'}")},
			want: []string{`spec.chart: Invalid value: spec.chart.repository must not carry credentials (user:password@host)`,
				"reference it with spec.chart.credentialsSecretRef"}},
		{name: "meshinstall OCI repository with a user", base: meshInstall,
			create: []func(map[string]any){set("spec.chart", "{repository: 'oci://robot@registry.example/charts'}")},
			want:   []string{"must not carry credentials"}},
		{name: "meshinstall batch size zero", base: meshInstall,
			create: []func(map[string]any){set("spec.upgrade", "{rollout: {batchSize: 0}}")},
			want:   []string{"spec.upgrade.rollout.batchSize: Invalid value: 0", "greater than or equal to 1"}},
		{name: "meshinstall unknown deletion policy", base: meshInstall, create: []func(map[string]any){set("spec.deletionPolicy", "Delete")},
			want: []string{`spec.deletionPolicy: Unsupported value: "Delete"`}},
		{name: "meshinstall linkerd trust anchor without issuer", base: meshInstall,
			create: []func(map[string]any){set("spec.provider", "Linkerd"), set("spec.linkerd", "{identity: {trustAnchorSecretRef: {name: anchor}}}")},
			want:   []string{"trustAnchorSecretRef and issuerSecretRef must be set together"}},
		{name: "meshinstall provider is immutable", base: meshInstall, update: []func(map[string]any){set("spec.provider", "Linkerd")},
			want: []string{"provider is immutable"}},
		{name: "meshinstall namespace is immutable", base: meshInstall, create: []func(map[string]any){set("spec.namespace", "istio-system")},
			update: []func(map[string]any){set("spec.namespace", "istio-other")}, want: []string{"namespace is immutable"}},
		{name: "meshinstall namespace cannot be removed", base: meshInstall, create: []func(map[string]any){set("spec.namespace", "istio-system")},
			update: []func(map[string]any){set("spec.namespace", "DELETE")}, want: []string{"namespace is immutable"}},

		{name: "meshinstall istio revision is immutable", base: meshInstall, create: []func(map[string]any){set("spec.istio", "{revision: stable}")},
			update: []func(map[string]any){set("spec.istio.revision", "canary")}, want: []string{"istio.revision is immutable"}},
		{name: "meshinstall linkerd stable version without chart", base: meshInstall,
			create: []func(map[string]any){set("spec.provider", "Linkerd"), set("spec.version", "2.19.0")},
			want:   []string{"Linkerd versions from the official repository are edge releases"}},
		{name: "meshinstall cilium gateway api without kube-proxy replacement", base: meshInstall,
			create: []func(map[string]any){set("spec.provider", "Cilium"), set("spec.cilium", "{gatewayAPI: true, kubeProxyReplacement: false}")},
			want:   []string{"Cilium's Gateway API and GAMMA support need kubeProxyReplacement"}},

		// MeshRevision
		{name: "meshrevision version is immutable", base: meshRevision, update: []func(map[string]any){set("spec.version", "1.29.1")},
			want: []string{"version is immutable; create a new MeshRevision"}},
		{name: "meshrevision meshInstallRef is immutable", base: meshRevision, update: []func(map[string]any){set("spec.meshInstallRef.name", "other")},
			want: []string{"meshInstallRef is immutable"}},
		{name: "meshrevision name must be a DNS label", base: meshRevision, create: []func(map[string]any){set("metadata.name", "rev.1.29")},
			want: []string{"metadata.name is the istio.io/rev value and must be a DNS label"}},
		{name: "meshrevision default tag", base: meshRevision, create: []func(map[string]any){set("spec.tags", "[default]")},
			want: []string{"spec.tags must not contain default"}},
		{name: "meshrevision bad tag", base: meshRevision, create: []func(map[string]any){set("spec.tags", "[Prod_Canary]")},
			want: []string{"spec.tags[0]: Invalid value"}},

		// TrafficSplit
		{name: "trafficsplit weights do not add up", base: trafficSplit, create: []func(map[string]any){set("spec.backends.1.weight", "30")},
			want: []string{"backend weights must add up to 100"}},
		{name: "trafficsplit weight above 100", base: trafficSplit,
			create: []func(map[string]any){set("spec.backends", "[{name: a, weight: 120}]")},
			want:   []string{"spec.backends[0].weight: Invalid value: 120", "less than or equal to 100"}},
		{name: "trafficsplit negative weight", base: trafficSplit,
			create: []func(map[string]any){set("spec.backends", "[{name: a, weight: -10}, {name: b, weight: 110}]")},
			want:   []string{"spec.backends[0].weight: Invalid value: -10", "greater than or equal to 0"}},
		{name: "trafficsplit no backends", base: trafficSplit, create: []func(map[string]any){set("spec.backends", "[]")},
			want: []string{"spec.backends: Invalid value", "should have at least 1 items"}},
		{name: "trafficsplit duplicate backends", base: trafficSplit,
			create: []func(map[string]any){set("spec.backends", "[{name: a, weight: 50}, {name: a, weight: 50}]")},
			want:   []string{"backend names must be unique"}},
		{name: "trafficsplit mirror percent above 100", base: trafficSplit,
			create: []func(map[string]any){set("spec.mirror", "{backend: {name: shadow}, percent: 101}")},
			want:   []string{"spec.mirror.percent: Invalid value: 101"}},
		{name: "trafficsplit rule weights", base: trafficSplit,
			create: []func(map[string]any){set("spec.rules", "[{matches: [{method: GET}], backends: [{name: a, weight: 50}]}]")},
			want:   []string{"rule backend weights must add up to 100"}},
		{name: "trafficsplit empty match", base: trafficSplit,
			create: []func(map[string]any){set("spec.rules", "[{matches: [{}], backends: [{name: a, weight: 100}]}]")},
			want:   []string{"a match needs at least one of headers, path or method"}},
		{name: "trafficsplit relative path", base: trafficSplit,
			create: []func(map[string]any){set("spec.rules", "[{matches: [{path: {value: api}}], backends: [{name: a, weight: 100}]}]")},
			want:   []string{"path must be absolute"}},
		{name: "trafficsplit unknown header match type", base: trafficSplit,
			create: []func(map[string]any){set("spec.rules", "[{matches: [{headers: [{name: x, type: Suffix, value: y}]}], backends: [{name: a, weight: 100}]}]")},
			want:   []string{`Unsupported value: "Suffix"`}},
		{name: "trafficsplit duplicate rule names", base: trafficSplit,
			create: []func(map[string]any){set("spec.rules", "[{name: r, matches: [{method: GET}], backends: [{name: a, weight: 100}]}, {name: r, matches: [{method: POST}], backends: [{name: a, weight: 100}]}]")},
			want:   []string{"rule names must be unique"}},
		{name: "trafficsplit unknown stable backend", base: trafficSplit, create: []func(map[string]any){set("spec.stableBackend", "reviews-v3")},
			want: []string{"stableBackend must name one of spec.backends"}},
		{name: "trafficsplit empty header list", base: trafficSplit,
			create: []func(map[string]any){set("spec.rules", "[{matches: [{headers: []}], backends: [{name: a, weight: 100}]}]")},
			want:   []string{"should have at least 1 items"}},
		{name: "trafficsplit retries attempts", base: trafficSplit, create: []func(map[string]any){set("spec.retries", "{attempts: 11}")},
			want: []string{"spec.retries.attempts: Invalid value: 11"}},
		{name: "trafficsplit timeout out of range", base: trafficSplit, create: []func(map[string]any){set("spec.timeout", "2h")},
			want: []string{"timeout must be between 1ms and 1h"}},
		{name: "trafficsplit sub-millisecond timeout", base: trafficSplit, create: []func(map[string]any){set("spec.timeout", "1ns")},
			want: []string{"timeout must be between 1ms and 1h"}},
		{name: "trafficsplit sub-millisecond per-try timeout", base: trafficSplit, create: []func(map[string]any){set("spec.retries", "{attempts: 2, perTryTimeout: 500us}")},
			want: []string{"perTryTimeout must be between 1ms and 1h"}},
		{name: "trafficsplit native output on linkerd", base: trafficSplit,
			create: []func(map[string]any){set("spec.provider", "Linkerd"), set("spec.output", "Native")},
			want:   []string{"output Native is only meaningful for provider Istio"}},

		// ZeroTrustPolicy
		{name: "zerotrust unknown mtls mode", base: zeroTrust, create: []func(map[string]any){set("spec.mtls", "{mode: Disabled}")},
			want: []string{`spec.mtls.mode: Unsupported value: "Disabled"`}},
		{name: "zerotrust empty rule", base: zeroTrust, create: []func(map[string]any){set("spec.rules", "[{}]")},
			want: []string{"a rule needs from, to, requestPrincipals or claims"}},
		{name: "zerotrust empty source", base: zeroTrust, create: []func(map[string]any){set("spec.rules", "[{from: [{}]}]")},
			want: []string{"a source needs serviceAccounts or namespaces"}},
		{name: "zerotrust bad service account", base: zeroTrust,
			create: []func(map[string]any){set("spec.rules", "[{from: [{serviceAccounts: ['Shop/Web']}]}]")},
			want:   []string{"spec.rules[0].from[0].serviceAccounts[0]: Invalid value"}},
		{name: "zerotrust port out of range", base: zeroTrust, create: []func(map[string]any){set("spec.rules", "[{to: [{ports: [70000]}]}]")},
			want: []string{"spec.rules[0].to[0].ports[0]: Invalid value: 70000"}},
		{name: "zerotrust empty from list allows nothing silently", base: zeroTrust, create: []func(map[string]any){set("spec.rules", "[{from: [], to: []}]")},
			want: []string{"spec.rules[0].from: Invalid value", "should have at least 1 items"}},
		{name: "zerotrust rules with allow", base: zeroTrust, create: []func(map[string]any){set("spec.defaultAction", "Allow")},
			want: []string{"rules have no effect with defaultAction Allow"}},
		{name: "zerotrust unknown method", base: zeroTrust, create: []func(map[string]any){set("spec.rules", "[{to: [{methods: [FETCH]}]}]")},
			want: []string{`Unsupported value: "FETCH"`}},

		// Canary
		{name: "canary stepWeight and stepWeights", base: canary, create: []func(map[string]any){set("spec.analysis.stepWeights", "[10, 20]")},
			want: []string{"stepWeight and stepWeights are mutually exclusive"}},
		{name: "canary maxWeight above 100", base: canary, create: []func(map[string]any){set("spec.analysis.maxWeight", "150")},
			want: []string{"spec.analysis.maxWeight: Invalid value: 150", "less than or equal to 100"}},
		{name: "canary stepWeights unsorted", base: canary,
			create: []func(map[string]any){set("spec.analysis.stepWeight", "DELETE"), set("spec.analysis.stepWeights", "[20, 10]")},
			want:   []string{"stepWeights must be in ascending order"}},
		{name: "canary stepWeights above maxWeight", base: canary,
			create: []func(map[string]any){set("spec.analysis.stepWeight", "DELETE"), set("spec.analysis.stepWeights", "[10, 60]")},
			want:   []string{"stepWeights must not exceed maxWeight"}},
		{name: "canary strategy without steps", base: canary, create: []func(map[string]any){set("spec.analysis.stepWeight", "DELETE")},
			want: []string{"strategy Canary needs analysis.stepWeight or analysis.stepWeights"}},
		{name: "canary bluegreen without iterations", base: canary, create: []func(map[string]any){set("spec.strategy", "BlueGreen")},
			want: []string{"strategy BlueGreen needs analysis.iterations"}},
		{name: "canary ab testing without match", base: canary,
			create: []func(map[string]any){set("spec.strategy", "ABTesting"), set("spec.analysis.iterations", "5")},
			want:   []string{"strategy ABTesting needs analysis.iterations and analysis.match"}},
		{name: "canary target kind", base: canary, create: []func(map[string]any){set("spec.targetRef.kind", "StatefulSet")},
			want: []string{`spec.targetRef.kind: Unsupported value: "StatefulSet"`}},
		{name: "canary custom metric without query", base: canary,
			create: []func(map[string]any){set("spec.analysis.metrics", "[{name: error-rate, thresholdRange: {max: '1'}}]")},
			want:   []string{"needs a query"}},
		{name: "canary threshold min above max", base: canary,
			create: []func(map[string]any){set("spec.analysis.metrics", "[{name: request-success-rate, thresholdRange: {min: '99', max: '90'}}]")},
			want:   []string{"thresholdRange.min must not exceed max"}},
		{name: "canary webhook type", base: canary,
			create: []func(map[string]any){set("spec.analysis.webhooks", "[{name: w, type: pre-promotion, url: 'http://hook'}]")},
			want:   []string{`Unsupported value: "pre-promotion"`}},
		{name: "canary mirroring without iterations", base: canary, create: []func(map[string]any){set("spec.strategy", "Mirroring")},
			want: []string{"strategy Mirroring needs analysis.iterations"}},
		{name: "canary repeated step weight", base: canary,
			create: []func(map[string]any){set("spec.analysis.stepWeight", "DELETE"), set("spec.analysis.stepWeights", "[10, 10, 20]")},
			want:   []string{"stepWeights must not repeat a weight"}},
		{name: "canary target name too long for derived Services", base: canary,
			create: []func(map[string]any){set("spec.targetRef.name", "a-very-long-deployment-name-that-leaves-no-room-for-the-primary-suffix")},
			want:   []string{"targetRef.name is not usable as a Service name"}},
		{name: "canary target is immutable", base: canary, update: []func(map[string]any){set("spec.targetRef.name", "other")},
			want: []string{"targetRef.name is immutable"}},

		// MeshFederation
		{name: "federation root generate and secret", base: federation,
			create: []func(map[string]any){set("spec.root", "{generate: {}, secretRef: {name: root}}")},
			want:   []string{"set exactly one of root.generate and root.secretRef"}},
		{name: "federation shared root without root", base: federation, create: []func(map[string]any){set("spec.root", "DELETE")},
			want: []string{"mode SharedRoot needs root"}},
		{name: "federation duplicate clusters", base: federation,
			create: []func(map[string]any){set("spec.clusters", "[{name: a, provider: Istio, kubeconfigSecretRef: {name: a}}, {name: a, provider: Linkerd, kubeconfigSecretRef: {name: b}}]")},
			want:   []string{"cluster names must be unique"}},
		{name: "federation two local clusters", base: federation,
			create: []func(map[string]any){set("spec.clusters", "[{name: a, provider: Istio}, {name: b, provider: Linkerd}]")},
			want:   []string{"at most one cluster may omit kubeconfigSecretRef"}},
		{name: "federation renewBefore not below lifetime", base: federation,
			create: []func(map[string]any){set("spec.intermediate", "{lifetime: 24h, renewBefore: 48h}")},
			want:   []string{"intermediate renewBefore must be shorter than its lifetime"}},
		{name: "federation mode is immutable", base: federation, update: []func(map[string]any){set("spec.mode", "BundleMerge")},
			want: []string{"mode is immutable"}},
		{name: "federation linkerd member with RSA intermediates", base: federation,
			create: []func(map[string]any){set("spec.clusters", "[{name: local, provider: Linkerd}]"), set("spec.intermediate", "{keyType: RSA2048}")},
			want:   []string{"Linkerd requires ECDSA P-256 certificates"}},
		{name: "federation unknown key type", base: federation, create: []func(map[string]any){set("spec.root", "{generate: {keyType: DSA}}")},
			want: []string{`Unsupported value: "DSA"`}},

		// EgressPolicy (and ZeroTrustPolicy's JWT fields); test/hostile has a
		// case per rule.
		{name: "egress hosts and cidrs", base: egress, create: []func(map[string]any){set("spec.rules", "[{hosts: [a.example.com], cidrs: [203.0.113.0/24], ports: [{number: 443, protocol: TCP}]}]")},
			want: []string{"a rule needs exactly one of hosts or cidrs"}},
		{name: "egress cidr with host bits", base: egress, create: []func(map[string]any){set("spec.rules", "[{cidrs: [203.0.113.7/24], ports: [{number: 5432, protocol: TCP}]}]")},
			want: []string{"must be a network in CIDR notation with no host bits set"}},
		{name: "egress cidrs on a TLS port", base: egress, create: []func(map[string]any){set("spec.rules", "[{cidrs: [203.0.113.0/24], ports: [{number: 443, protocol: TLS}]}]")},
			want: []string{"cidrs match addresses, not names: their ports must have protocol TCP"}},
		{name: "egress gateway nodes without cidrs", base: egress, create: []func(map[string]any){set("spec.gateway", "{nodeSelector: {egress: 'true'}}")},
			want: []string{"gateway.nodeSelector routes cidrs through gateway nodes: add a rule with cidrs"}},
		{name: "zerotrust jwt principals without issuers", base: zeroTrust, create: []func(map[string]any){set("spec.rules", "[{requestPrincipals: ['*']}]")},
			want: []string{"rules with requestPrincipals or claims need spec.jwt"}},
		{name: "zerotrust jwt issuer with both key sources", base: zeroTrust,
			create: []func(map[string]any){set("spec.jwt", `{issuers: [{issuer: a, jwksURI: 'https://a.example.com/jwks', jwks: '{"keys":[]}'}]}`)},
			want:   []string{"an issuer needs exactly one of jwksURI or jwks"}},

		// BreakGlass
		{name: "breakglass without reason", base: breakGlass, create: []func(map[string]any){set("spec.reason", "DELETE")},
			want: []string{"spec.reason: Required value"}},
		{name: "breakglass both targets", base: breakGlass, create: []func(map[string]any){set("spec.target", "{provider: Istio, meshInstallRef: {name: istio}}")},
			want: []string{"set exactly one of target.meshInstallRef and target.provider"}},
		{name: "breakglass selector and names", base: breakGlass,
			create: []func(map[string]any){set("spec.scope", "{namespaces: [a], namespaceSelector: {matchLabels: {team: x}}}")},
			want:   []string{"set at most one of scope.namespaceSelector and scope.namespaces"}},
		{name: "breakglass target is immutable", base: breakGlass, update: []func(map[string]any){set("spec.target", "{provider: Linkerd}")},
			want: []string{"target is immutable"}},
		{name: "breakglass scope is immutable", base: breakGlass, create: []func(map[string]any){set("spec.scope", "{namespaces: [a]}")},
			update: []func(map[string]any){set("spec.scope", "{namespaces: [a, b]}")}, want: []string{"scope is immutable"}},
		{name: "breakglass scope cannot be removed", base: breakGlass, create: []func(map[string]any){set("spec.scope", "{namespaces: [a]}")},
			update: []func(map[string]any){set("spec.scope", "DELETE")}, want: []string{"scope is immutable"}},
		{name: "breakglass actions are immutable", base: breakGlass, update: []func(map[string]any){set("spec.actions.restartWorkloads", "true")},
			want: []string{"actions are immutable"}},
		{name: "breakglass empty namespace list", base: breakGlass, create: []func(map[string]any){set("spec.scope", "{namespaces: []}")},
			want: []string{"spec.scope.namespaces: Invalid value", "should have at least 1 items"}},
		{name: "breakglass short expiry", base: breakGlass, create: []func(map[string]any){set("spec.expiresAfter", "10s")},
			want: []string{"expiresAfter must be between 1m and 8760h; got 10s"}},
	}
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	cases := invalidCases()
	if len(cases) < 40 {
		t.Fatalf("only %d invalid cases; the API promises at least 40", len(cases))
	}
	kinds := map[string]bool{}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			obj := mustParse(strings.ReplaceAll(tc.base, "NAME", fmt.Sprintf("case-%d", i)))
			kinds[obj.GetKind()] = true
			for _, m := range tc.create {
				m(obj.Object)
			}
			err := k8s.Create(ctx, obj)
			if tc.update != nil {
				if err != nil {
					t.Fatalf("create of the valid base failed: %v", err)
				}
				for _, m := range tc.update {
					m(obj.Object)
				}
				err = k8s.Update(ctx, obj)
			}
			if err == nil {
				t.Fatalf("the API server accepted an invalid object:\n%v", obj.Object)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message does not contain %q:\n%v", w, err)
				}
			}
		})
	}
	if len(kinds) != 8 {
		t.Errorf("invalid cases cover %d kinds, want all 8: %v", len(kinds), kinds)
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	files, err := filepath.Glob("../../config/samples/meshplane_*.yaml")
	if err != nil || len(files) < 7 {
		t.Fatalf("samples: %v (%d files)", err, len(files))
	}
	kinds := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := mustParse(string(raw))
		kinds[obj.GetKind()] = true
		if obj.GetNamespace() == "default" {
			obj.SetNamespace("shop")
		}
		// Server-side apply is strict: an unknown or mistyped field fails
		// instead of being pruned silently.
		if err := k8s.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("validation-test")); err != nil {
			t.Errorf("%s: rejected: %v", filepath.Base(f), err)
		}
	}
	// Every kind of the API group has a sample.
	known := scheme.New().AllKnownTypes()
	for gvk := range known {
		list := gvk
		list.Kind += "List"
		if _, isKind := known[list]; gvk.Group == "meshplane.io" && isKind && !kinds[gvk.Kind] {
			t.Errorf("no sample in config/samples for kind %s", gvk.Kind)
		}
	}
}

func TestDefaultsApplied(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	ctx := context.Background()
	bg := mustParse(strings.ReplaceAll(breakGlass, "NAME", "defaults"))
	if err := k8s.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	actions, _, _ := unstructured.NestedMap(bg.Object, "spec", "actions")
	for k, want := range map[string]any{"detachInjection": true, "relaxPolicies": true, "pinTraffic": true, "restartBatchSize": int64(10)} {
		if actions[k] != want {
			t.Errorf("spec.actions.%s = %v, want %v", k, actions[k], want)
		}
	}
	mi := mustParse(strings.ReplaceAll(meshInstall, "NAME", "defaults"))
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := unstructured.NestedString(mi.Object, "spec", "deletionPolicy"); p != "Orphan" {
		t.Errorf("spec.deletionPolicy = %q, want Orphan", p)
	}
}

// TestKustomizationsListEverything: `kubectl apply -k config/crd` and
// `-k config/samples` install every CRD and sample there is (a CRD left out
// of the kustomization is a kind a kustomize install does not serve).
func TestKustomizationsListEverything(t *testing.T) {
	for dir, glob := range map[string]string{"../../config/crd": "bases/*.yaml", "../../config/samples": "meshplane_*.yaml"} {
		k, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		files, err := filepath.Glob(filepath.Join(dir, glob))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s/%s: %v (%d files)", dir, glob, err, len(files))
		}
		for _, f := range files {
			rel, _ := filepath.Rel(dir, f)
			if !strings.Contains(string(k), "- "+rel+"\n") {
				t.Errorf("%s/kustomization.yaml does not list %s", dir, rel)
			}
		}
	}
}
