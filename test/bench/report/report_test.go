package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestGoalLine(t *testing.T) {
	t.Setenv("MESHPLANE_BENCH_SCALE", "")
	cases := []struct {
		g    Goal
		want string
	}{
		{Goal{Name: "ratio", Value: 1.42, Limit: 1.5, Unit: "×", Raw: "21 s vs 14.8 s"}, "PASS   ratio: 1.42× (target <= 1.50×); 21 s vs 14.8 s"},
		{Goal{Name: "RSS", Value: 152, Limit: 120, Unit: " MiB"}, "FAIL   RSS: 152 MiB (target <= 120 MiB)"},
		{Goal{Name: "rate", Value: 99, Limit: 100, AtLeast: true, Unit: "/s"}, "FAIL   rate: 99/s (target >= 100/s)"},
	}
	for _, c := range cases {
		if got := c.g.Line(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	t.Setenv("MESHPLANE_BENCH_SCALE", "0.1")
	if got := cases[0].g.Line(); !strings.HasPrefix(got, "SCALED ") {
		t.Errorf("scaled run: %q", got)
	}
	if Count(1000) != 100 || Count(3) != 1 {
		t.Errorf("Count: %d %d", Count(1000), Count(3))
	}
}

func TestPrintAndSummary(t *testing.T) {
	t.Setenv("MESHPLANE_BENCH_SCALE", "")
	var b bytes.Buffer
	out, lines = &b, nil
	Print("traffic", Goal{Name: "a", Value: 1, Limit: 2}, Goal{Name: "b", Value: 3, Limit: 2})
	if !strings.HasPrefix(b.String(), "== traffic\n   PASS   a") {
		t.Errorf("printed %q", b.String())
	}
	if s := Summary(); len(s) != 2 || !strings.HasPrefix(s[0], "FAIL") {
		t.Errorf("summary %q", s)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := Percentile(ds, 99); p != 99*time.Millisecond {
		t.Errorf("p99 %s", p)
	}
	if p := Percentile(ds, 50); p != 50*time.Millisecond {
		t.Errorf("p50 %s", p)
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}
