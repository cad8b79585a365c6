package apply

import (
	"encoding/json"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
)

// TestFillProtoDefaults: a typed Istio object read back lacks its
// zero-valued enums; completed, it contains a desired output that writes
// them out, and still does not contain one that asks for another value.
func TestFillProtoDefaults(t *testing.T) {
	sc := &istionetworking.Sidecar{}
	sc.Name = "web"
	sc.Spec.OutboundTrafficPolicy = &networkingv1alpha3.OutboundTrafficPolicy{Mode: networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY}
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]any{}
	if err := json.Unmarshal(b, &live); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"spec": map[string]any{"outboundTrafficPolicy": map[string]any{"mode": "REGISTRY_ONLY"}}}
	if Contains(live, want) {
		t.Fatalf("precondition: protobuf JSON kept the zero enum: %v", live)
	}
	fillProtoDefaults(sc, live)
	if !Contains(live, want) {
		t.Fatalf("completed live %v does not contain %v", live, want)
	}
	other := map[string]any{"spec": map[string]any{"outboundTrafficPolicy": map[string]any{"mode": "ALLOW_ANY"}}}
	if Contains(live, other) {
		t.Fatalf("completed live %v contains %v", live, other)
	}
	if _, ok := live["spec"].(map[string]any)["workloadSelector"]; ok {
		t.Fatalf("an unset message was added: %v", live)
	}
}
