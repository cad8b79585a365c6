package ownership

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	corev1 "k8s.io/api/core/v1"
)

func TestOwnerValue(t *testing.T) {
	cases := []struct{ kind, ns, name, want string }{
		{"MeshInstall", "", "istio", "meshinstall..istio"},
		{"TrafficSplit", "shop", "reviews", "trafficsplit.shop.reviews"},
	}
	for _, c := range cases {
		if got := OwnerValue(c.kind, c.ns, c.name); got != c.want {
			t.Errorf("OwnerValue(%q,%q,%q) = %q, want %q", c.kind, c.ns, c.name, got, c.want)
		}
	}
	long := OwnerValue("TrafficSplit", strings.Repeat("n", 63), strings.Repeat("x", 200))
	if errs := validation.IsValidLabelValue(long); len(errs) > 0 {
		t.Fatalf("long value %q is not a valid label value: %v", long, errs)
	}
	other := OwnerValue("TrafficSplit", strings.Repeat("n", 63), strings.Repeat("x", 199)+"y")
	if long == other {
		t.Fatalf("two long owners share the value %q", long)
	}
}

func TestIsOwnedBy(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: Labels("TrafficSplit", "shop", "reviews")}}
	if !IsOwnedBy(cm, "TrafficSplit", "shop", "reviews") || IsOwnedBy(cm, "TrafficSplit", "shop", "other") {
		t.Fatal("ownership not recognised")
	}
	if IsManaged(&corev1.ConfigMap{}) {
		t.Fatal("an unlabelled object is not managed")
	}
}
