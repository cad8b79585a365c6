package analysis

import (
	"math"
	"strings"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func s(v string) *string { return &v }

func TestInRange(t *testing.T) {
	cases := []struct {
		name string
		v    float64
		r    meshv1alpha1.ThresholdRange
		ok   bool
		msg  string
	}{
		{"min only, above", 99.5, meshv1alpha1.ThresholdRange{Min: s("99")}, true, ""},
		{"min only, equal", 99, meshv1alpha1.ThresholdRange{Min: s("99")}, true, ""},
		{"min only, below", 98.9, meshv1alpha1.ThresholdRange{Min: s("99")}, false, "value 98.9 is below min 99 (range [99, +inf])"},
		{"max only, below", 499, meshv1alpha1.ThresholdRange{Max: s("500")}, true, ""},
		{"max only, equal", 500, meshv1alpha1.ThresholdRange{Max: s("500")}, true, ""},
		{"max only, above", 500.01, meshv1alpha1.ThresholdRange{Max: s("500")}, false, "value 500.01 is above max 500 (range [-inf, 500])"},
		{"both, inside", 5, meshv1alpha1.ThresholdRange{Min: s("1"), Max: s("10")}, true, ""},
		{"both, at min", 1, meshv1alpha1.ThresholdRange{Min: s("1"), Max: s("10")}, true, ""},
		{"both, at max", 10, meshv1alpha1.ThresholdRange{Min: s("1"), Max: s("10")}, true, ""},
		{"both, below", 0.5, meshv1alpha1.ThresholdRange{Min: s("1"), Max: s("10")}, false, "value 0.5 is below min 1 (range [1, 10])"},
		{"both, above", 11, meshv1alpha1.ThresholdRange{Min: s("1"), Max: s("10")}, false, "value 11 is above max 10 (range [1, 10])"},
		{"equal bounds, equal", 0, meshv1alpha1.ThresholdRange{Min: s("0"), Max: s("0")}, true, ""},
		{"equal bounds, off", 0.001, meshv1alpha1.ThresholdRange{Min: s("0"), Max: s("0")}, false, "value 0.001 is above max 0"},
		{"negative range, inside", -3, meshv1alpha1.ThresholdRange{Min: s("-5"), Max: s("-1")}, true, ""},
		{"negative range, above", -0.5, meshv1alpha1.ThresholdRange{Min: s("-5"), Max: s("-1")}, false, "value -0.5 is above max -1"},
		{"negative range, below", -5.5, meshv1alpha1.ThresholdRange{Min: s("-5"), Max: s("-1")}, false, "value -5.5 is below min -5"},
		{"decimals, just inside", 99.95, meshv1alpha1.ThresholdRange{Min: s("99.95")}, true, ""},
		{"decimals, just below", 99.9499, meshv1alpha1.ThresholdRange{Min: s("99.95")}, false, "value 99.9499 is below min 99.95"},
		{"decimals, max", 0.25, meshv1alpha1.ThresholdRange{Max: s("0.250")}, true, ""},
		{"NaN never passes", math.NaN(), meshv1alpha1.ThresholdRange{Min: s("0")}, false, "value NaN is not a number"},
		{"+Inf never passes", math.Inf(1), meshv1alpha1.ThresholdRange{Min: s("0")}, false, "value +Inf is not a number"},
		{"-Inf never passes a max", math.Inf(-1), meshv1alpha1.ThresholdRange{Max: s("0")}, false, "value -Inf is not a number"},
		{"no bounds", 1, meshv1alpha1.ThresholdRange{}, false, "neither min nor max"},
		{"bad min", 1, meshv1alpha1.ThresholdRange{Min: s("1e")}, false, `thresholdRange.min "1e" is not a decimal number`},
		{"bad max", 1, meshv1alpha1.ThresholdRange{Max: s("abc")}, false, `thresholdRange.max "abc" is not a decimal number`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := InRange(tc.v, tc.r)
			if ok != tc.ok {
				t.Fatalf("InRange(%v, %+v) = %v (%s), want %v", tc.v, tc.r, ok, msg, tc.ok)
			}
			if tc.ok && msg != "" {
				t.Fatalf("passing value with message %q", msg)
			}
			if !tc.ok && !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

func TestFailed(t *testing.T) {
	rs := []Result{{Passed: true}, {Passed: false}, {Passed: false}, {Passed: true}}
	if n := Failed(rs); n != 2 {
		t.Fatalf("Failed = %d, want 2", n)
	}
	if n := Failed(nil); n != 0 {
		t.Fatalf("Failed(nil) = %d", n)
	}
}
