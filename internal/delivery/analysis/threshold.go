package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// InRange reports whether v is within r, min and max inclusive, and says
// why when it is not. The bounds are decimal strings (the API validates
// them); an unset bound is open. NaN and ±Inf are never in range, and a
// bound that does not parse fails the check with a message naming it.
func InRange(v float64, r meshv1alpha1.ThresholdRange) (bool, string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false, fmt.Sprintf("value %s is not a number within %s", formatValue(v), formatRange(r))
	}
	if r.Min == nil && r.Max == nil {
		return false, "thresholdRange has neither min nor max"
	}
	if r.Min != nil {
		lo, err := strconv.ParseFloat(*r.Min, 64)
		if err != nil || math.IsNaN(lo) {
			return false, fmt.Sprintf("thresholdRange.min %q is not a decimal number", *r.Min)
		}
		if v < lo {
			return false, fmt.Sprintf("value %s is below min %s (range %s)", formatValue(v), *r.Min, formatRange(r))
		}
	}
	if r.Max != nil {
		hi, err := strconv.ParseFloat(*r.Max, 64)
		if err != nil || math.IsNaN(hi) {
			return false, fmt.Sprintf("thresholdRange.max %q is not a decimal number", *r.Max)
		}
		if v > hi {
			return false, fmt.Sprintf("value %s is above max %s (range %s)", formatValue(v), *r.Max, formatRange(r))
		}
	}
	return true, ""
}

// Failed counts the results that did not pass.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if !r.Passed {
			n++
		}
	}
	return n
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func formatRange(r meshv1alpha1.ThresholdRange) string {
	lo, hi := "-inf", "+inf"
	if r.Min != nil {
		lo = *r.Min
	}
	if r.Max != nil {
		hi = *r.Max
	}
	return "[" + lo + ", " + hi + "]"
}

// Summary describes the failed results in one line for a status message
// ("" when all passed): how many failed and each one's message, cut to
// at most max bytes (no limit when max <= 0).
func Summary(rs []Result, max int) string {
	n := Failed(rs)
	if n == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d metric checks failed", n, len(rs))
	sep := ": "
	for _, r := range rs {
		if r.Passed {
			continue
		}
		b.WriteString(sep + r.Message)
		sep = "; "
	}
	s := b.String()
	if max > 0 && len(s) > max {
		cut := max - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
