// Package analysis benchmarks one Canary analysis round: the metric checks
// of an interval against a Prometheus-compatible API that takes a fixed
// time per query, run concurrently by analysis.Checker, against the same
// checks one after the other in the same run; and how long an unreachable
// metrics server takes to fail a round. Run with make bench.
package analysis

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/test/fakeprom"
)

const (
	metricsPerRound = 16 // the API's maximum of metrics per Canary
	queryLatency    = 20 * time.Millisecond
	rounds          = 10
)

func metrics() []meshv1alpha1.CanaryMetric {
	lo := "99"
	ms := make([]meshv1alpha1.CanaryMetric, metricsPerRound)
	for i := range ms {
		ms[i] = meshv1alpha1.CanaryMetric{Name: fmt.Sprintf("m%d", i), Query: fmt.Sprintf(`sum(rate(m%d{namespace="{{ namespace }}"}[{{ interval }}]))`, i),
			ThresholdRange: meshv1alpha1.ThresholdRange{Min: &lo}}
	}
	return ms
}

var target = analysis.Target{Provider: meshv1alpha1.ProviderIstio, Namespace: "shop", Workload: "checkout", Service: "checkout", Interval: time.Minute}

func BenchmarkAnalysisRound(b *testing.B) {
	p := fakeprom.Start(b)
	p.SetDefault(99.9)
	p.SetDelay(queryLatency)
	server := meshv1alpha1.MetricsServer{Address: p.URL}
	ms := metrics()
	c := &analysis.Checker{}
	ctx := context.Background()
	// Warm the connection pool.
	c.Check(ctx, server, nil, ms, target)

	var concurrent, serial time.Duration
	for range b.N {
		start := time.Now()
		for range rounds {
			if rs := c.Check(ctx, server, nil, ms, target); analysis.Failed(rs) != 0 {
				b.Fatalf("round failed: %s", analysis.Summary(rs, 0))
			}
		}
		concurrent += time.Since(start)
		start = time.Now()
		for range rounds {
			for _, m := range ms {
				if rs := c.Check(ctx, server, nil, []meshv1alpha1.CanaryMetric{m}, target); analysis.Failed(rs) != 0 {
					b.Fatalf("check failed: %s", rs[0].Message)
				}
			}
		}
		serial += time.Since(start)
	}
	n := float64(b.N * rounds)
	b.ReportMetric(float64(concurrent.Milliseconds())/n, "ms/round")
	b.ReportMetric(float64(serial.Milliseconds())/n, "ms/serial-round")
	b.ReportMetric(float64(serial)/float64(concurrent), "serial/concurrent")
	b.Logf("%d metrics at %s per query: a round takes %.1f ms concurrently, %.1f ms one after the other",
		metricsPerRound, queryLatency, float64(concurrent.Microseconds())/n/1000, float64(serial.Microseconds())/n/1000)
}

func BenchmarkUnreachableServer(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	server := meshv1alpha1.MetricsServer{Address: "http://" + l.Addr().String()}
	_ = l.Close()
	ms := metrics()
	c := &analysis.Checker{}
	var total time.Duration
	for range b.N {
		start := time.Now()
		rs := c.Check(context.Background(), server, nil, ms, target)
		total += time.Since(start)
		if analysis.Failed(rs) != len(ms) {
			b.Fatalf("%d of %d failed against a closed port", analysis.Failed(rs), len(ms))
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/failed-round")
}
