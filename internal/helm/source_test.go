package helm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/rest"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
)

// offlineEngine returns an Engine whose API server does not exist: Load
// never talks to it.
func offlineEngine(t *testing.T, cacheDir string) *Engine {
	t.Helper()
	e, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, Options{CacheDir: cacheDir, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func wantStalled(t *testing.T, err error, reason string, contains ...string) {
	t.Helper()
	term, ok := outcome.AsTerminal(err)
	if !ok {
		t.Fatalf("err = %v, want terminal %s", err, reason)
	}
	if term.StalledReason() != reason {
		t.Fatalf("reason = %s, want %s (%v)", term.StalledReason(), reason, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("message %q does not contain %q", err.Error(), c)
		}
	}
}

func TestLoadHTTPRepositoryCachesIndexAndArchives(t *testing.T) {
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.29.0", "1.30.0")
	repo := chartrepo.Serve(t, dir)
	cache := t.TempDir()
	e := offlineEngine(t, cache)
	ctx := context.Background()
	src := Source{RepoURL: repo.URL}
	for i := 0; i < 3; i++ {
		ch, err := e.Load(ctx, "istiod", "1.29.0", src)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Version != "1.29.0" {
			t.Fatalf("version = %s", ch.Metadata.Version)
		}
		// Each load is a chart of its own.
		ch.Metadata.Version = "mutated"
	}
	if _, err := e.Load(ctx, "base", "1.30.0", src); err != nil {
		t.Fatal(err)
	}
	if n := repo.Count("/index.yaml"); n != 1 {
		t.Errorf("index fetched %d times, want 1", n)
	}
	if n := repo.Count("/istiod-1.29.0.tgz"); n != 1 {
		t.Errorf("istiod archive fetched %d times, want 1", n)
	}

	// A new engine (operator restart) with the same cache directory reads
	// the index again but not the archive.
	e2 := offlineEngine(t, cache)
	if _, err := e2.Load(ctx, "istiod", "1.29.0", src); err != nil {
		t.Fatal(err)
	}
	if n := repo.Count("/istiod-1.29.0.tgz"); n != 1 {
		t.Errorf("after restart the archive was fetched again (%d)", n)
	}
	if n := repo.Count("/index.yaml"); n != 2 {
		t.Errorf("index fetched %d times, want 2", n)
	}
}

func TestLoadVersionPublishedLater(t *testing.T) {
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.29.0")
	repo := chartrepo.Serve(t, dir)
	e := offlineEngine(t, t.TempDir())
	ctx := context.Background()
	src := Source{RepoURL: repo.URL}
	if _, err := e.Load(ctx, "istiod", "1.29.0", src); err != nil {
		t.Fatal(err)
	}
	_, err := e.Load(ctx, "istiod", "1.30.0", src)
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "istiod", "1.30.0", repo.URL, "versions available: 1.29.0")
	_, err = e.Load(ctx, "nosuchchart", "1.0.0", src)
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "nosuchchart", "not found")

	charts.StageIstio(t, dir, "1.30.0")
	if err := repo.Reindex(); err != nil {
		t.Fatal(err)
	}
	ch, err := e.Load(ctx, "istiod", "1.30.0", src)
	if err != nil {
		t.Fatalf("version published later not found: %v", err)
	}
	if ch.Metadata.Version != "1.30.0" {
		t.Fatalf("version = %s", ch.Metadata.Version)
	}
}

func TestLoadRefusesTamperedArchive(t *testing.T) {
	dir := t.TempDir()
	paths := charts.StageIstio(t, dir, "1.29.0")
	repo := chartrepo.Serve(t, dir)
	// Replace istiod's archive after the index was published.
	var istiod, cni string
	for _, p := range paths {
		switch filepath.Base(p) {
		case "istiod-1.29.0.tgz":
			istiod = p
		case "cni-1.29.0.tgz":
			cni = p
		}
	}
	other, err := os.ReadFile(cni)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(istiod, other, 0o644); err != nil {
		t.Fatal(err)
	}
	e := offlineEngine(t, t.TempDir())
	_, err = e.Load(context.Background(), "istiod", "1.29.0", Source{RepoURL: repo.URL})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "digest", "refused")
	// Nothing tampered is cached: a second try fails the same way.
	_, err = e.Load(context.Background(), "istiod", "1.29.0", Source{RepoURL: repo.URL})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "digest")
}

func TestLoadUnreachableRepositoryIsTransient(t *testing.T) {
	e := offlineEngine(t, t.TempDir())
	_, err := e.Load(context.Background(), "istiod", "1.29.0", Source{RepoURL: chartrepo.UnreachableURL(t)})
	if err == nil || outcome.IsTerminal(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func TestLoadTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.29.0")
	repo := chartrepo.Serve(t, dir, chartrepo.WithTLS(), chartrepo.WithBasicAuth("mesh", "s3cret"))
	e := offlineEngine(t, t.TempDir())
	ctx := context.Background()
	if _, err := e.Load(ctx, "istiod", "1.29.0", Source{RepoURL: repo.URL, CAData: repo.CAData, Username: "mesh", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.Load(ctx, "base", "1.29.0", Source{RepoURL: repo.URL, CAData: repo.CAData, Username: "mesh", Password: "wrong"})
	// The index is cached; the archive request is refused.
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "credentials")
	e2 := offlineEngine(t, t.TempDir())
	_, err = e2.Load(ctx, "base", "1.29.0", Source{RepoURL: repo.URL, CAData: repo.CAData, Username: "mesh", Password: "wrong"})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "credentials")
	// Without the CA the certificate is not trusted (transient: a CA can
	// be fixed without a spec change only by the operator's environment).
	if _, err := e2.Load(ctx, "base", "1.29.0", Source{RepoURL: repo.URL, Username: "mesh", Password: "s3cret"}); err == nil {
		t.Fatal("self-signed certificate trusted without CAData")
	}
}

func TestLoadLocalPaths(t *testing.T) {
	dir := t.TempDir()
	tgz := charts.Stage(t, dir, charts.Chart{Name: charts.Istiod, Version: "1.29.0"})[0]
	unpacked := charts.Stage(t, dir, charts.Chart{Name: charts.Istiod, Version: "1.30.0", Unpacked: true})[0]
	charts.Stage(t, dir, charts.Chart{Name: charts.IstioBase, Version: "1.29.0"})
	e := offlineEngine(t, t.TempDir())
	ctx := context.Background()
	for _, tc := range []struct {
		path, chart, version string
	}{
		{tgz, "", "1.29.0"},
		{unpacked, "", "1.30.0"},
		{unpacked, "", ""},
		{dir, "istiod", "1.29.0"},
		{dir, "istiod", "1.30.0"},
		{dir, "base", "1.29.0"},
	} {
		ch, err := e.Load(ctx, tc.chart, tc.version, Source{Path: tc.path})
		if err != nil {
			t.Fatalf("%s %s %s: %v", tc.path, tc.chart, tc.version, err)
		}
		if tc.version != "" && ch.Metadata.Version != tc.version {
			t.Errorf("%s: version %s", tc.path, ch.Metadata.Version)
		}
	}
	_, err := e.Load(ctx, "istiod", "1.31.0", Source{Path: dir})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "versions available: 1.29.0, 1.30.0")
	_, err = e.Load(ctx, "", "1.31.0", Source{Path: tgz})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "1.29.0", "1.31.0")
	_, err = e.Load(ctx, "istiod", "1.29.0", Source{Path: filepath.Join(dir, "missing")})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "does not exist")
	_, err = e.Load(ctx, "istiod", "1.29.0", Source{Path: dir, RepoURL: "http://127.0.0.1:1"})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "exactly one")
}

func TestLoadOCI(t *testing.T) {
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.29.0")
	reg := chartrepo.ServeOCI(t, dir)
	e := offlineEngine(t, t.TempDir())
	ctx := context.Background()
	src := Source{RepoURL: reg.URL, Insecure: true}
	for i := 0; i < 2; i++ {
		ch, err := e.Load(ctx, "istiod", "1.29.0", src)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Name != "istiod" || ch.Metadata.Version != "1.29.0" {
			t.Fatalf("loaded %s %s", ch.Metadata.Name, ch.Metadata.Version)
		}
	}
	if n := reg.Count("/v2/charts/istiod/tags/list"); n != 1 {
		t.Errorf("tags listed %d times, want 1 (cached)", n)
	}
	_, err := e.Load(ctx, "istiod", "1.30.0", src)
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "versions available: 1.29.0")
	_, err = e.Load(ctx, "nosuch", "1.30.0", src)
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "nosuch")
	_, err = e.Load(ctx, "istiod", "1.29.0", Source{RepoURL: "oci://registry.example.com/charts", Insecure: true})
	wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "loopback")
}
