package helm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

type testEnv struct {
	e       *Engine
	c       client.Client
	writes  *testenv.Writes
	repo    *chartrepo.Server
	oci     *chartrepo.Registry
	dir     string
	srcHTTP Source
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an API server")
	}
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true, SkipMeshplaneCRDs: true}})
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.29.0", "1.30.0")
	charts.StageLinkerd(t, dir, "2026.1.1")
	charts.StageCilium(t, dir, "1.19.5")
	env := &testEnv{dir: dir}
	env.repo = chartrepo.Serve(t, dir)
	env.oci = chartrepo.ServeOCI(t, dir)
	env.srcHTTP = Source{RepoURL: env.repo.URL}
	counted, writes, _ := testenv.CountRequests(cfg)
	env.writes = writes
	e, err := New(counted, Options{Logger: testr.New(t), Timeout: 30 * time.Second, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	env.e = e
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	env.c, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (env *testEnv) deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatalf("deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func wantResult(t *testing.T, res Result, err error, action Action, revision int) {
	t.Helper()
	if err != nil {
		t.Fatalf("want %s revision %d, got error %v", action, revision, err)
	}
	if res.Action != action || res.Revision != revision {
		t.Fatalf("got %s revision %d, want %s revision %d", res.Action, res.Revision, action, revision)
	}
}

func hasObject(objs []ObjectRef, want ObjectRef) bool {
	for _, o := range objs {
		if o == want {
			return true
		}
	}
	return false
}

func TestEngine(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	e := env.e

	t.Run("install, no-op, render-equal no-op, upgrade, rollback", func(t *testing.T) {
		rel := Release{Name: "istiod", Namespace: "istio-system", Chart: "istiod", Version: "1.29.0", Source: env.srcHTTP,
			Values: map[string]any{"injector": map[string]any{"url": "https://127.0.0.1:9443"}},
			Labels: map[string]string{"meshplane.io/owner": "MeshInstall..istio"}}
		res, err := e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		d := env.deployment(t, "istio-system", "istiod")
		if d.Labels["istio.io/rev"] != "default" || *d.Spec.Replicas != 1 {
			t.Errorf("istiod labels %v replicas %d", d.Labels, *d.Spec.Replicas)
		}
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := env.c.Get(ctx, client.ObjectKey{Name: "istio-sidecar-injector"}, mwc); err != nil {
			t.Fatal(err)
		}
		if u := mwc.Webhooks[0].ClientConfig.URL; u == nil || *u != "https://127.0.0.1:9443/inject/default" {
			t.Errorf("injector URL = %v", u)
		}
		for _, o := range []ObjectRef{
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "istio-system", Name: "istiod"},
			{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration", Name: "istio-sidecar-injector"},
		} {
			if !hasObject(res.Objects, o) {
				t.Errorf("objects lack %+v: %+v", o, res.Objects)
			}
		}

		before := env.writes.Count()
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionNone, 1)
		// Values that render the same: no upgrade either.
		rel.Values["pilot"] = map[string]any{"replicaCount": 1}
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionNone, 1)
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionNone, 1)
		if n := env.writes.Count() - before; n != 0 {
			t.Fatalf("no-op Ensure calls sent %d writes", n)
		}
		// A fresh engine (operator restart) finds the same: no write.
		e2, err := New(e.cfg, Options{Logger: testr.New(t), CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		res, err = e2.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionNone, 1)
		if n := env.writes.Count() - before; n != 0 {
			t.Fatalf("no-op Ensure after restart sent %d writes", n)
		}

		rel.Values["pilot"] = map[string]any{"replicaCount": 2}
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionUpgraded, 2)
		if r := *env.deployment(t, "istio-system", "istiod").Spec.Replicas; r != 2 {
			t.Errorf("replicas = %d after upgrade", r)
		}
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionNone, 2)

		rel.Version = "1.30.0"
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionUpgraded, 3)
		info, err := e.Get(ctx, "istiod", "istio-system")
		if err != nil {
			t.Fatal(err)
		}
		if info.ChartVersion != "1.30.0" || info.AppVersion != "1.30.0" || info.Chart != "istiod" || info.Status != "deployed" || info.Revision != 3 {
			t.Errorf("Get = %+v", info)
		}
		if info.Labels[DigestLabel] == "" || info.Labels["meshplane.io/owner"] != "MeshInstall..istio" {
			t.Errorf("release labels = %v", info.Labels)
		}
		if !strings.Contains(env.deployment(t, "istio-system", "istiod").Spec.Template.Spec.Containers[0].Image, ":1.30.0") {
			t.Errorf("image not upgraded")
		}

		if err := e.Rollback(ctx, "istiod", "istio-system", false, 0); err != nil {
			t.Fatal(err)
		}
		info, err = e.Get(ctx, "istiod", "istio-system")
		if err != nil {
			t.Fatal(err)
		}
		if info.Revision != 4 || info.ChartVersion != "1.29.0" {
			t.Errorf("after rollback: revision %d chart %s", info.Revision, info.ChartVersion)
		}
		// Ensure with the 1.30.0 spec upgrades again.
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionUpgraded, 5)
	})

	t.Run("render errors are terminal and write nothing", func(t *testing.T) {
		rel := Release{Name: "istiod-canary", Namespace: "istio-canary", Chart: "istiod", Version: "1.29.0", Source: env.srcHTTP,
			Values: map[string]any{"revision": "canary", "global": map[string]any{"istioNamespace": "istio-canary"}}}
		res, err := e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		before := env.writes.Count()

		bad := rel
		bad.Values = map[string]any{"revision": "canary", "revisionTags": []any{"canary"}}
		_, err = e.Ensure(ctx, bad, false, 0)
		wantStalled(t, err, meshv1alpha1.RenderFailedReason, "revisionTags must not contain")
		_, err = e.Render(ctx, bad)
		wantStalled(t, err, meshv1alpha1.RenderFailedReason, "revisionTags must not contain")
		// A missing version is terminal too, and also writes nothing.
		bad = rel
		bad.Version = "9.9.9"
		_, err = e.Ensure(ctx, bad, false, 0)
		wantStalled(t, err, meshv1alpha1.ChartUnavailableReason, "9.9.9", "1.30.0, 1.29.0")

		if n := env.writes.Count() - before; n != 0 {
			t.Fatalf("failed renders sent %d writes", n)
		}
		dep := env.deployment(t, "istio-canary", "istiod-canary")
		// Values the chart (like Istio's, without values.schema.json)
		// renders but the API server refuses: Validate refuses them in
		// a dry run that writes nothing.
		fresh := Release{Name: "istiod-bad", Namespace: "istio-canary", Chart: "istiod", Version: "1.29.0", Source: env.srcHTTP,
			Values: map[string]any{"revision": "bad", "pilot": map[string]any{"replicaCount": "three"}}}
		err = e.Validate(ctx, []Release{fresh})
		wantStalled(t, err, meshv1alpha1.OutputRejectedReason, "chart istiod 1.29.0 (release istio-canary/istiod-bad)", "Deployment istio-canary/istiod-bad", "replicas", "no release was changed")
		cpu := rel
		cpu.Values = map[string]any{"revision": "canary", "global": map[string]any{"istioNamespace": "istio-canary"},
			"pilot": map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "lots"}}}}
		err = e.Validate(ctx, []Release{rel, cpu})
		wantStalled(t, err, meshv1alpha1.OutputRejectedReason, "Deployment istio-canary/istiod-canary", "cpu", "lots")
		// Ensure dry-runs what it would write too: no failed upgrade, no
		// rollback, no new revision.
		_, err = e.Ensure(ctx, cpu, false, 0)
		wantStalled(t, err, meshv1alpha1.OutputRejectedReason, "Deployment istio-canary/istiod-canary", "cpu", "lots")
		if err := e.Validate(ctx, []Release{rel}); err != nil {
			t.Fatalf("Validate of the deployed release: %v", err)
		}
		if after := env.deployment(t, "istio-canary", "istiod-canary"); after.ResourceVersion != dep.ResourceVersion {
			t.Fatalf("Validate changed the live Deployment")
		}
		if info, err := e.Get(ctx, "istiod-canary", "istio-canary"); err != nil || info.Revision != 1 {
			t.Fatalf("release changed: %+v %v", info, err)
		}
		if _, err := e.Get(ctx, "istiod-bad", "istio-canary"); !errors.Is(err, ErrReleaseNotFound) {
			t.Fatalf("Get of never-installed release: %v", err)
		}
		if err := env.c.Get(ctx, client.ObjectKey{Name: "bad"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
			t.Fatalf("namespace of a failed render was created: %v", err)
		}
		// Render of a good spec works and equals the deployed manifest.
		m, err := e.Render(ctx, rel)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Get(ctx, "istiod-canary", "istio-canary")
		if !manifestsEqual(m, info.Manifest) {
			t.Errorf("Render differs from the deployed manifest")
		}
	})

	t.Run("pending releases are recovered", func(t *testing.T) {
		tgz := filepath.Join(env.dir, "ztunnel-1.29.0.tgz")
		rel := Release{Name: "ztunnel", Namespace: "pending", Version: "1.29.0", Source: Source{Path: tgz}}
		res, err := e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		// An operator that died mid-upgrade leaves revision 2 pending.
		cfg, err := e.actionConfig("pending")
		if err != nil {
			t.Fatal(err)
		}
		last, err := lastRelease(cfg, "ztunnel")
		if err != nil {
			t.Fatal(err)
		}
		pending := *last
		info := *last.Info
		pending.Info = &info
		pending.Version = 2
		pending.SetStatus(rcommon.StatusPendingUpgrade, "Preparing upgrade")
		if err := cfg.Releases.Create(&pending); err != nil {
			t.Fatal(err)
		}
		// Helm itself refuses to go on.
		ch, err := e.Load(ctx, "", "1.29.0", rel.Source)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := action.NewUpgrade(cfg).Run("ztunnel", ch, nil); err == nil || !strings.Contains(err.Error(), "in progress") {
			t.Fatalf("plain Helm upgrade of a pending release: %v", err)
		}
		res, err = e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionUpgraded, 3)
		hist, err := history(cfg, "ztunnel")
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, r := range hist {
			statuses = append(statuses, string(r.Info.Status))
		}
		if got := strings.Join(statuses, ","); got != "superseded,failed,deployed" {
			t.Errorf("history = %s", got)
		}

		// pending-install of a first install (from the OCI registry).
		cni := Release{Name: "istio-cni", Namespace: "pending", Chart: "cni", Version: "1.29.0", Source: Source{RepoURL: env.oci.URL, Insecure: true}}
		res, err = e.Ensure(ctx, cni, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		last, err = lastRelease(cfg, "istio-cni")
		if err != nil {
			t.Fatal(err)
		}
		last.SetStatus(rcommon.StatusPendingInstall, "Initial install underway")
		if err := cfg.Releases.Update(last); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Get(ctx, "istio-cni", "pending"); !errors.Is(err, ErrReleaseNotFound) {
			t.Fatalf("Get of a pending-install release: %v", err)
		}
		res, err = e.Ensure(ctx, cni, false, 0)
		wantResult(t, res, err, ActionUpgraded, 2)
		if info, err := e.Get(ctx, "istio-cni", "pending"); err != nil || info.Status != "deployed" {
			t.Fatalf("after recovery: %+v %v", info, err)
		}
	})

	t.Run("failed upgrade is rolled back, failed install uninstalled", func(t *testing.T) {
		// envtest runs no controllers: a Deployment never becomes
		// Available, so waiting fails.
		dirSrc := charts.Stage(t, t.TempDir(), charts.Chart{Name: charts.Istiod, Version: "1.29.0", Unpacked: true})[0]
		rel := Release{Name: "istiod-f", Namespace: "fail", Version: "1.29.0", Source: Source{Path: dirSrc},
			Values: map[string]any{"revision": "f"}}
		res, err := e.Ensure(ctx, rel, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		rel.Values = map[string]any{"revision": "f", "pilot": map[string]any{"replicaCount": 3}}
		start := time.Now()
		res, err = e.Ensure(ctx, rel, true, 2*time.Second)
		wantStalled(t, err, meshv1alpha1.InstallFailedReason, "rolled back to revision 1")
		if res.Action != ActionRolledBack || res.Revision != 3 {
			t.Errorf("result = %s revision %d, want RolledBack revision 3", res.Action, res.Revision)
		}
		t.Logf("failed upgrade + rollback took %v", time.Since(start).Round(time.Millisecond))
		if r := *env.deployment(t, "fail", "istiod-f").Spec.Replicas; r != 1 {
			t.Errorf("replicas = %d after rollback, want 1", r)
		}
		info, err := e.Get(ctx, "istiod-f", "fail")
		if err != nil || info.Revision != 3 || info.Values["pilot"] != nil {
			t.Fatalf("after rollback: %+v %v", info, err)
		}

		first := Release{Name: "istiod-first", Namespace: "fail-first", Chart: "istiod", Version: "1.29.0", Source: env.srcHTTP,
			Values: map[string]any{"revision": "first"}}
		_, err = e.Ensure(ctx, first, true, 2*time.Second)
		wantStalled(t, err, meshv1alpha1.InstallFailedReason, "uninstalled")
		if _, err := e.Get(ctx, "istiod-first", "fail-first"); !errors.Is(err, ErrReleaseNotFound) {
			t.Fatalf("failed install left a release: %v", err)
		}
		err = env.c.Get(ctx, client.ObjectKey{Namespace: "fail-first", Name: "istiod-first"}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("failed install left its Deployment: %v", err)
		}
	})

	t.Run("real Linkerd charts install; uninstall keeps CRDs", func(t *testing.T) {
		crds := Release{Name: "linkerd-crds", Namespace: "linkerd", Chart: "linkerd-crds", Version: "2026.1.1", Source: env.srcHTTP}
		start := time.Now()
		res, err := e.Ensure(ctx, crds, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		t.Logf("linkerd-crds install: %v", time.Since(start).Round(time.Millisecond))
		cp := Release{Name: "linkerd-control-plane", Namespace: "linkerd", Chart: "linkerd-control-plane", Version: "2026.1.1", Source: env.srcHTTP}
		start = time.Now()
		_, err = e.Ensure(ctx, cp, false, 0)
		wantStalled(t, err, meshv1alpha1.RenderFailedReason, "identity")
		t.Logf("linkerd-control-plane render error: %v", time.Since(start).Round(time.Millisecond))
		cp.Values = linkerdIdentityValues(t)
		start = time.Now()
		res, err = e.Ensure(ctx, cp, false, 0)
		wantResult(t, res, err, ActionInstalled, 1)
		t.Logf("linkerd-control-plane install: %v", time.Since(start).Round(time.Millisecond))
		for _, name := range []string{"linkerd-destination", "linkerd-identity", "linkerd-proxy-injector"} {
			env.deployment(t, "linkerd", name)
		}
		start = time.Now()
		res, err = e.Ensure(ctx, cp, false, 0)
		wantResult(t, res, err, ActionNone, 1)
		t.Logf("linkerd-control-plane no-op Ensure: %v", time.Since(start).Round(time.Millisecond))

		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.c.Get(ctx, client.ObjectKey{Name: "servers.policy.linkerd.io"}, crd); err != nil {
			t.Fatal(err)
		}
		if crd.Annotations[KeepPolicyAnnotation] != KeepPolicy {
			t.Errorf("CRD annotations = %v", crd.Annotations)
		}
		start = time.Now()
		if err := e.Uninstall(ctx, "linkerd-control-plane", "linkerd", false, 0); err != nil {
			t.Fatal(err)
		}
		t.Logf("linkerd-control-plane uninstall: %v", time.Since(start).Round(time.Millisecond))
		if err := e.Uninstall(ctx, "linkerd-crds", "linkerd", false, 0); err != nil {
			t.Fatal(err)
		}
		if err := e.Uninstall(ctx, "linkerd-crds", "linkerd", false, 0); err != nil {
			t.Fatalf("uninstalling a missing release: %v", err)
		}
		if err := env.c.Get(ctx, client.ObjectKey{Name: "servers.policy.linkerd.io"}, crd); err != nil || crd.DeletionTimestamp != nil {
			t.Fatalf("CRD deleted by uninstall: %v", err)
		}
		err = env.c.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: "linkerd-destination"}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("control plane not uninstalled: %v", err)
		}

		// Istio base: CRDs from crds/, never deleted either.
		base := Release{Name: "istio-base", Namespace: "istio-system", Chart: "base", Version: "1.29.0", Source: env.srcHTTP}
		start = time.Now()
		// base has no workloads, so waiting succeeds on envtest.
		res, err = e.Ensure(ctx, base, true, 30*time.Second)
		wantResult(t, res, err, ActionInstalled, 1)
		t.Logf("istio base install with wait (CRDs from crds/): %v", time.Since(start).Round(time.Millisecond))
		if !hasObject(res.Objects, ObjectRef{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "virtualservices.networking.istio.io"}) {
			t.Errorf("base objects lack the VirtualService CRD")
		}
		start = time.Now()
		if err := e.Uninstall(ctx, "istio-base", "istio-system", true, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("istio base uninstall with wait: %v", time.Since(start).Round(time.Millisecond))
		if err := env.c.Get(ctx, client.ObjectKey{Name: "virtualservices.networking.istio.io"}, crd); err != nil {
			t.Fatalf("Istio CRD gone: %v", err)
		}
	})

	t.Run("adopt", func(t *testing.T) {
		// A release installed directly with the Helm SDK.
		ch, err := e.Load(ctx, "istiod", "1.29.0", env.srcHTTP)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := e.actionConfig("adopt")
		if err != nil {
			t.Fatal(err)
		}
		inst := action.NewInstall(cfg)
		inst.ReleaseName, inst.Namespace, inst.CreateNamespace = "istiod-adopt", "adopt", true
		inst.WaitStrategy = kube.HookOnlyStrategy
		if _, err := inst.Run(ch, map[string]any{"revision": "adopt", "pilot": map[string]any{"replicaCount": 2}}); err != nil {
			t.Fatal(err)
		}
		before := env.writes.Count()
		rel := Release{Name: "istiod-adopt", Namespace: "adopt", Chart: "istiod", Version: "1.29.0", Source: env.srcHTTP,
			Values: map[string]any{"revision": "adopt"}}
		res, err := e.Adopt(ctx, rel, false, 0)
		wantResult(t, res, err, ActionAdopted, 1)
		if n := env.writes.Count() - before; n != 0 {
			t.Fatalf("adoption without changes sent %d writes", n)
		}
		rel.Values = map[string]any{"pilot": map[string]any{"replicaCount": 3}}
		res, err = e.Adopt(ctx, rel, false, 0)
		wantResult(t, res, err, ActionUpgraded, 2)
		d := env.deployment(t, "adopt", "istiod-adopt")
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas = %d", *d.Spec.Replicas)
		}

		// Objects created by a mesh CLI, without a release: a clash for
		// Ensure, taken over in place by Adopt.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cli"}}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "istio-reader-service-account", Namespace: "cli", Labels: map[string]string{"app": "istio-reader"}}}
		for _, o := range []client.Object{ns, sa} {
			if err := env.c.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		base := Release{Name: "istio-base", Namespace: "cli", Chart: "base", Version: "1.29.0", Source: env.srcHTTP,
			Values: map[string]any{"global": map[string]any{"istioNamespace": "cli"}}}
		before = env.writes.Count()
		_, err = e.Ensure(ctx, base, false, 0)
		wantStalled(t, err, meshv1alpha1.ConflictReason, "istio-reader-service-account")
		if n := env.writes.Count() - before; n != 0 {
			t.Fatalf("a conflicting install sent %d writes", n)
		}
		res, err = e.Adopt(ctx, base, false, 0)
		wantResult(t, res, err, ActionAdopted, 1)
		if err := env.c.Get(ctx, client.ObjectKeyFromObject(sa), sa); err != nil {
			t.Fatal(err)
		}
		if sa.Annotations["meta.helm.sh/release-name"] != "istio-base" || sa.UID == "" {
			t.Errorf("adopted ServiceAccount annotations = %v", sa.Annotations)
		}
	})

	t.Run("real Cilium chart renders with Meshplane's values", func(t *testing.T) {
		rel := Release{Name: "cilium", Namespace: "kube-system", Chart: "cilium", Version: "1.19.5", Source: env.srcHTTP,
			Values: map[string]any{
				"kubeProxyReplacement": true,
				"k8sServiceHost":       "127.0.0.1",
				"k8sServicePort":       6443,
				"envoy":                map[string]any{"enabled": true},
				"gatewayAPI":           map[string]any{"enabled": true},
				"authentication":       map[string]any{"enabled": true, "mutual": map[string]any{"spire": map[string]any{"enabled": true, "install": map[string]any{"enabled": true}}}},
			}}
		start := time.Now()
		m, err := e.Render(ctx, rel)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cilium render took %v", time.Since(start).Round(time.Millisecond))
		for _, want := range []string{"name: cilium\n", "name: cilium-envoy", "name: cilium-operator", "spire"} {
			if !strings.Contains(m, want) {
				t.Errorf("cilium manifest lacks %q", want)
			}
		}
		bad := rel
		bad.Values = map[string]any{"kubeProxyReplacement": 3}
		_, err = e.Render(ctx, bad)
		wantStalled(t, err, meshv1alpha1.RenderFailedReason, "kubeProxyReplacement")
	})
}

// linkerdIdentityValues generates a trust anchor and an issuer (ECDSA P-256)
// as the Linkerd provider will.
func linkerdIdentityValues(t *testing.T) map[string]any {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, issuerKey := newKey(), newKey()
	now := time.Now()
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root.linkerd.cluster.local"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "identity.linkerd.cluster.local"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(12 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootCert, _ := x509.ParseCertificate(rootDER)
	issuerDER, err := x509.CreateCertificate(rand.Reader, issuer, rootCert, &issuerKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	return map[string]any{
		"identityTrustAnchorsPEM": pemOf("CERTIFICATE", rootDER),
		"identity": map[string]any{"issuer": map[string]any{"tls": map[string]any{
			"crtPEM": pemOf("CERTIFICATE", issuerDER),
			"keyPEM": pemOf("EC PRIVATE KEY", keyDER),
		}}},
	}
}
