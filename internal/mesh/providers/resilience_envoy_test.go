package providers

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	// The Envoy types a ResiliencePolicy's CiliumEnvoyConfig holds,
	// registered for protojson.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/scheme"
)

// validator is implemented by Envoy's generated messages
// (protoc-gen-validate rules: required fields, ranges).
type validator interface{ ValidateAll() error }

// envoyResources decodes every resource of a CiliumEnvoyConfig (as JSON
// maps) as the typed Envoy message its @type names (strictly: an unknown
// or misspelt field fails), nested typed configs included, and runs
// Envoy's own validation rules on it; it returns the resources' type URLs.
func envoyResources(cec map[string]any) ([]string, error) {
	resources, _ := cec["spec"].(map[string]any)["resources"].([]any)
	var types []string
	for _, r := range resources {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		a := &anypb.Any{}
		if err := protojson.Unmarshal(b, a); err != nil {
			return nil, fmt.Errorf("%s: %w", b, err)
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, err
		}
		v, ok := m.(validator)
		if !ok {
			return nil, fmt.Errorf("%T has no validation", m)
		}
		if err := v.ValidateAll(); err != nil {
			return nil, fmt.Errorf("%T invalid: %w", m, err)
		}
		types = append(types, a.TypeUrl)
	}
	return types, nil
}

// TestCiliumEnvoyConfigResourcesAreEnvoyProtos: every resource of every
// CiliumEnvoyConfig a translation returns is a valid Envoy message: the
// CRD accepts any object there, Cilium's agent does not.
func TestCiliumEnvoyConfigResourcesAreEnvoyProtos(t *testing.T) {
	n := 0
	for _, tr := range resilienceAll() {
		for _, o := range tr.objs {
			if o.GetObjectKind().GroupVersionKind().Kind != "CiliumEnvoyConfig" {
				continue
			}
			u, err := apply.ToUnstructured(o, scheme.New())
			if err != nil {
				t.Fatal(err)
			}
			types, err := envoyResources(u.Object)
			if err != nil {
				t.Errorf("%s: %v", tr.golden, err)
			}
			n += len(types)
		}
	}
	if n < 20 {
		t.Fatalf("only %d Envoy resources checked", n)
	}
}

// checkCiliumResilience: Cilium refuses what its report refuses; what it
// translates is what the policy asks for: each CiliumEnvoyConfig resource
// a valid Envoy message, with the fault filter exactly when the policy
// injects faults and the rate-limit filter exactly when it limits; the
// algorithm on the Service annotation or the cluster; the timeout on the
// HTTPRoute or the CiliumEnvoyConfig route.
func checkCiliumResilience(t *testing.T, rp *meshv1alpha1.ResiliencePolicy, objs []map[string]any) {
	t.Helper()
	prov, _ := Registry().Get(meshv1alpha1.ProviderCilium)
	if mesh.DecideResilience(prov.(mesh.ResilienceSupporter), mesh.DefaultScope(meshv1alpha1.ProviderCilium), &rp.Spec) != nil && objs != nil {
		t.Fatalf("Cilium: report refuses, translation returned %d objects", len(objs))
	}
	for _, o := range objs {
		b, _ := json.Marshal(o)
		switch o["kind"] {
		case "CiliumEnvoyConfig":
			if _, err := envoyResources(o); err != nil {
				t.Fatalf("Cilium: %v", err)
			}
			if strings.Contains(string(b), "envoy.filters.http.fault") != (rp.Spec.FaultInjection != nil) ||
				strings.Contains(string(b), "envoy.filters.http.local_ratelimit") != (rp.Spec.RateLimit != nil) {
				t.Fatalf("Cilium: filters do not match the policy: %s", b)
			}
			if lb := rp.Spec.LoadBalancer; lb != nil && !strings.Contains(string(b), `"lb_policy":"`+strings.ToUpper(ciliumAlgorithm(lb.Algorithm))+`"`) {
				t.Fatalf("Cilium: cluster without the algorithm %s: %s", lb.Algorithm, b)
			}
		case "Service":
			if _, spec := o["spec"]; spec || rp.Spec.LoadBalancer == nil || !strings.Contains(string(b), ciliumAlgorithm(rp.Spec.LoadBalancer.Algorithm)) {
				t.Fatalf("Cilium: Service output %s for %+v", b, rp.Spec.LoadBalancer)
			}
		case "HTTPRoute":
			if rp.Spec.Timeouts == nil || rp.Spec.Timeouts.Request == nil || !strings.Contains(string(b), `"request":"`) {
				t.Fatalf("Cilium: HTTPRoute %s for timeouts %+v", b, rp.Spec.Timeouts)
			}
		default:
			t.Fatalf("Cilium: unexpected output %s", b)
		}
	}
}

func ciliumAlgorithm(a meshv1alpha1.LoadBalancerAlgorithm) string {
	return map[meshv1alpha1.LoadBalancerAlgorithm]string{meshv1alpha1.LoadBalancerRoundRobin: "round_robin",
		meshv1alpha1.LoadBalancerLeastRequest: "least_request", meshv1alpha1.LoadBalancerRandom: "random"}[a]
}
