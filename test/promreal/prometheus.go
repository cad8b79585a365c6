// Package promreal runs a real Prometheus inside a test: Prometheus's own
// scrape manager, TSDB and PromQL engine (github.com/prometheus/prometheus),
// with its HTTP API (web/api/v1, the handler the prometheus binary serves
// under /api/v1) on 127.0.0.1. Building cmd/prometheus would add far more
// than the rest of the test assets to a cold build; these packages compile
// with the test instead.
//
// The package also has an exporter that serves each mesh's request metric
// families with the labels the mesh emits (see exporter.go).
package promreal

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
)

// Prometheus is a running in-process Prometheus.
type Prometheus struct {
	// URL is the base URL of the HTTP API (http://127.0.0.1:<port>).
	URL string
	// Interval is the scrape interval.
	Interval time.Duration

	db      *tsdb.DB
	engine  *promql.Engine
	scrapes *scrape.Manager
}

// Start starts Prometheus scraping targets (host:port) every interval under
// job "mesh", and stops it when the test ends.
func Start(t testing.TB, interval time.Duration, targets ...string) *Prometheus {
	t.Helper()
	logger := promslog.NewNopLogger()
	if os.Getenv("PROMREAL_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	reg := prometheus.NewRegistry()
	opts := tsdb.DefaultOptions()
	db, err := tsdb.Open(t.TempDir(), logger, reg, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	engine := promql.NewEngine(promql.EngineOpts{
		Logger: logger, Reg: reg, MaxSamples: 5_000_000, Timeout: 30 * time.Second,
		LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return interval.Milliseconds() },
	})
	// Targets apply at once (the default throttles target updates to 5s).
	sm, err := scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(100 * time.Millisecond)}, logger, nil, nil, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	iv := model.Duration(interval).String()
	cfg, err := config.Load(fmt.Sprintf("global: {scrape_interval: %s, scrape_timeout: %s}\nscrape_configs:\n- job_name: mesh\n", iv, iv), logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	tg := &targetgroup.Group{Source: "test"}
	for _, a := range targets {
		tg.Targets = append(tg.Targets, model.LabelSet{model.AddressLabel: model.LabelValue(a)})
	}
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	tsets <- map[string][]*targetgroup.Group{"mesh": {tg}}
	go func() { _ = sm.Run(tsets) }()
	t.Cleanup(sm.Stop)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "http", Host: l.Addr().String()}
	api := newAPI(engine, db, cfg, u, logger, reg)
	router := route.New()
	api.Register(router)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", router))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	p := &Prometheus{URL: u.String(), Interval: interval, db: db, engine: engine, scrapes: sm}
	p.waitScraped(t, len(targets))
	return p
}

// waitScraped returns once every target was scraped successfully three
// times, so rate() over a few intervals has data.
func (p *Prometheus) waitScraped(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + 5*p.Interval)
	q := `count_over_time(up{job="mesh"}[1h]) >= 3 and up{job="mesh"} == 1`
	for {
		v, err := p.Query(context.Background(), q, time.Now())
		if err == nil && len(v) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape its %d targets three times: %v %v", n, v, err)
		}
		time.Sleep(p.Interval / 4)
	}
}

// newAPI builds Prometheus's v1 HTTP API the way web.New does, with the
// parts a query needs (engine, storage, config) and the rest off.
func newAPI(engine *promql.Engine, db *tsdb.DB, cfg *config.Config, u *url.URL, logger *slog.Logger, reg *prometheus.Registry) *apiv1.API {
	ready := func(f http.HandlerFunc) http.HandlerFunc { return f }
	return apiv1.NewAPI(engine, db, nil, nil,
		nil, nil, nil,
		func() config.Config { return *cfg },
		map[string]string{},
		apiv1.GlobalURLOptions{ListenAddress: u.Host, Host: u.Host, Scheme: u.Scheme},
		ready,
		nil, "", false, false, 0,
		logger,
		nil,
		0, 0, 0,
		false, nil,
		func() (apiv1.RuntimeInfo, error) { return apiv1.RuntimeInfo{}, nil },
		&apiv1.PrometheusVersion{Version: "in-process"},
		nil, nil,
		reg, reg,
		nil,
		false, nil,
		false, false, false,
		5*time.Minute,
		false, false,
		nil,
		nil,
		apiv1.OpenAPIOptions{},
		parser.NewParser(parser.Options{}),
		false,
		30*time.Second,
	)
}

// Query evaluates q at ts with the engine directly (for diagnostics).
func (p *Prometheus) Query(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
	qry, err := p.engine.NewInstantQuery(ctx, p.db, nil, q, ts)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	v, err := res.Vector()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return v, nil
}
