// Package report prints the figures of make bench: each goal of the
// performance issue with its raw figures, its target and PASS or FAIL, so
// a run's output can be pasted into a note as it is. It also lets a quick
// run scale object counts down (MESHPLANE_BENCH_SCALE, a fraction in
// (0,1]); a scaled run prints SCALED instead of PASS/FAIL, since the
// targets hold at full size only.
package report

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scale is the fraction of the full object counts a run uses (1 unless
// MESHPLANE_BENCH_SCALE says otherwise).
func Scale() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("MESHPLANE_BENCH_SCALE"), 64); err == nil && v > 0 && v <= 1 {
		return v
	}
	return 1
}

// Count scales a full-size object count by Scale, never below 1.
func Count(full int) int {
	n := int(float64(full) * Scale())
	if n < 1 {
		return 1
	}
	return n
}

// Goal is a figure and its target: Value must be at most Max (or at least
// Min when AtLeast).
type Goal struct {
	// Name says what is measured, e.g. "1k+1k Ready / raw apply".
	Name string
	// Value is the measured figure in Unit.
	Value float64
	// Limit is the target bound in Unit.
	Limit float64
	// AtLeast makes Limit a lower bound.
	AtLeast bool
	// Unit is printed after Value and Limit ("×", "s", "MiB", "ms").
	Unit string
	// Raw is what the figure is made of, e.g. "32.1 s vs 14.6 s".
	Raw string
}

// Met reports whether the goal's target holds.
func (g Goal) Met() bool {
	if g.AtLeast {
		return g.Value >= g.Limit
	}
	return g.Value <= g.Limit
}

// Line is the goal as one printed line.
func (g Goal) Line() string {
	verdict := "FAIL"
	switch {
	case Scale() < 1:
		verdict = "SCALED"
	case g.Met():
		verdict = "PASS"
	}
	op := "<="
	if g.AtLeast {
		op = ">="
	}
	s := fmt.Sprintf("%-6s %s: %s%s (target %s %s%s)", verdict, g.Name, num(g.Value), g.Unit, op, num(g.Limit), g.Unit)
	if g.Raw != "" {
		s += "; " + g.Raw
	}
	return s
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e9:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

var (
	mu    sync.Mutex
	out   io.Writer = os.Stdout
	lines []string
)

// Print prints a benchmark's heading and its goals at once (benchmarks of
// one package run one after another; the lines stay together) and keeps
// them for Summary.
func Print(heading string, goals ...Goal) {
	mu.Lock()
	defer mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "== %s\n", heading)
	for _, g := range goals {
		fmt.Fprintf(&b, "   %s\n", g.Line())
		lines = append(lines, g.Line())
	}
	fmt.Fprint(out, b.String())
}

// Summary is every goal printed so far, failures first.
func Summary() []string {
	mu.Lock()
	defer mu.Unlock()
	s := append([]string(nil), lines...)
	sort.SliceStable(s, func(i, j int) bool { return strings.HasPrefix(s[i], "FAIL") && !strings.HasPrefix(s[j], "FAIL") })
	return s
}

// Seconds formats a duration for a Raw text.
func Seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

// Percentile returns the p-th percentile (0-100) of ds (nearest rank);
// 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
