package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/cluster"
)

// plugin runs the plugin with a real kubeconfig file, as kubectl would.
type plugin struct {
	t          *testing.T
	kubeconfig string
	c          client.Client
}

func newPlugin(t *testing.T) *plugin {
	srv := cluster.UseServer(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, srv.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	s := runtime.NewScheme()
	if err := meshv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return &plugin{t: t, kubeconfig: path, c: c}
}

func (p *plugin) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(append([]string{"--kubeconfig", p.kubeconfig}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func (p *plugin) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("kubectl meshplane %v: %v\n%s", args, err, out)
	}
	return out
}

// sample creates config/samples/<file> and returns it.
func sample[T client.Object](p *plugin, file string, obj T) T {
	p.t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		p.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, obj); err != nil {
		p.t.Fatal(err)
	}
	if err := p.c.Create(context.Background(), obj); err != nil {
		p.t.Fatalf("creating %s: %v", file, err)
	}
	return obj
}

func setConditions(conds *[]metav1.Condition, gen int64, ready metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{Type: meshv1alpha1.ReadyCondition, Status: ready, Reason: reason, Message: msg, ObservedGeneration: gen})
	if ready == metav1.ConditionFalse {
		meta.SetStatusCondition(conds, metav1.Condition{Type: meshv1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
}

func TestPlugin(t *testing.T) {
	p := newPlugin(t)
	ctx := context.Background()

	if out := p.mustRun("status", "-A"); !strings.Contains(out, "No Meshplane objects found") {
		t.Errorf("empty cluster: %q", out)
	}
	if out := p.mustRun("upgrade", "status"); !strings.Contains(out, "No MeshInstall found") {
		t.Errorf("empty cluster upgrade status: %q", out)
	}
	if _, err := p.run("break-glass", "engage", "--reason", "INC-1"); err == nil || !strings.Contains(err.Error(), "no MeshInstall") {
		t.Errorf("engage without a mesh: %v", err)
	}

	mi := sample(p, "meshplane_v1alpha1_meshinstall.yaml", &meshv1alpha1.MeshInstall{})
	mi.Status.InstalledVersion = "1.28.1"
	mi.Status.ObservedGeneration = mi.Generation
	mi.Status.ActiveRevision = "1-28-1"
	mi.Status.Upgrade = &meshv1alpha1.UpgradeStatus{Phase: "Migrating", FromVersion: "1.28.1", ToVersion: "1.29.0", TargetRevision: "1-29-0",
		TotalNamespaces: 10, MigratedNamespaces: 4, CurrentBatch: []string{"shop", "payments"}}
	mi.Status.Revisions = []meshv1alpha1.RevisionSummary{{Name: "1-28-1", Version: "1.28.1", Ready: true, Tags: []string{"default"}}, {Name: "1-29-0", Version: "1.29.0", Ready: true}}
	setConditions(&mi.Status.Conditions, mi.Generation, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "")
	if err := p.c.Status().Update(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ts := sample(p, "meshplane_v1alpha1_trafficsplit.yaml", &meshv1alpha1.TrafficSplit{})
	ts.Status.ObservedGeneration = ts.Generation
	setConditions(&ts.Status.Conditions, ts.Generation, metav1.ConditionFalse, meshv1alpha1.UnsupportedFeatureReason, "Linkerd cannot express mirroring")
	if err := p.c.Status().Update(ctx, ts); err != nil {
		t.Fatal(err)
	}
	can := sample(p, "meshplane_v1alpha1_canary.yaml", &meshv1alpha1.Canary{})
	sample(p, "meshplane_v1alpha1_zerotrustpolicy.yaml", &meshv1alpha1.ZeroTrustPolicy{})

	// engage: the only mesh is picked; the selector is parsed.
	out := p.mustRun("break-glass", "engage", "--reason", "INC-4711: istiod down", "--namespace-selector", "team=payments", "--name", "inc-4711", "--expires-after", "4h")
	if !strings.Contains(out, "breakglass/inc-4711 created for mesh istio") {
		t.Errorf("engage: %q", out)
	}
	bg := &meshv1alpha1.BreakGlass{}
	if err := p.c.Get(ctx, client.ObjectKey{Name: "inc-4711"}, bg); err != nil {
		t.Fatal(err)
	}
	if bg.Spec.Target.MeshInstallRef == nil || bg.Spec.Target.MeshInstallRef.Name != "istio" || bg.Spec.Reason != "INC-4711: istiod down" ||
		bg.Spec.Scope == nil || bg.Spec.Scope.NamespaceSelector.MatchLabels["team"] != "payments" || bg.Spec.ExpiresAfter.Hours() != 4 {
		t.Errorf("BreakGlass spec %+v", bg.Spec)
	}
	bg.Status.Phase = meshv1alpha1.BreakGlassEngaged
	bg.Status.Touched.Namespaces = 7
	bg.Status.ObservedGeneration = bg.Generation
	setConditions(&bg.Status.Conditions, bg.Generation, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "")
	if err := p.c.Status().Update(ctx, bg); err != nil {
		t.Fatal(err)
	}
	if _, err := p.run("break-glass", "engage", "--namespace-selector", "team=payments"); err == nil {
		t.Errorf("engage without --reason succeeded")
	}
	if _, err := p.run("break-glass", "engage", "--reason", "x", "--namespace-selector", "team in (("); err == nil || !strings.Contains(err.Error(), "--namespace-selector") {
		t.Errorf("bad selector: %v", err)
	}

	// status: one row per object, Ready and reason, active break-glasses.
	out = p.mustRun("status", "-A")
	t.Logf("status:\n%s", out)
	for _, want := range []string{
		"KIND", "REASON",
		"MeshInstall", "istio", "Succeeded", "Istio 1.28.1 (installed 1.28.1)",
		"TrafficSplit", "UnsupportedFeature", "Linkerd cannot express mirroring",
		"Canary", "NotReconciled",
		"ZeroTrustPolicy",
		"BreakGlass", "inc-4711", "Engaged, 7 namespaces",
		"1 active break-glass",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	if out := p.mustRun("status", "-n", "nowhere"); strings.Contains(out, "TrafficSplit") || !strings.Contains(out, "MeshInstall") {
		t.Errorf("status -n nowhere shows namespaced objects of other namespaces or hides cluster ones:\n%s", out)
	}

	// canary promote / abort set the annotation Meshplane acts on.
	for _, action := range []string{"promote", "abort"} {
		p.mustRun("canary", action, can.Name, "-n", can.Namespace)
		got := &meshv1alpha1.Canary{}
		if err := p.c.Get(ctx, client.ObjectKeyFromObject(can), got); err != nil {
			t.Fatal(err)
		}
		if got.Annotations[meshv1alpha1.CanaryActionAnnotation] != action {
			t.Errorf("after canary %s: annotations %v", action, got.Annotations)
		}
	}
	if _, err := p.run("canary", "promote", "missing", "-n", can.Namespace); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("promote of a missing canary: %v", err)
	}

	// upgrade status: progress from status.
	out = p.mustRun("upgrade", "status")
	t.Logf("upgrade status:\n%s", out)
	for _, want := range []string{"MeshInstall istio: Istio", "strategy RevisionBased", "1.28.1 -> 1.29.0, phase Migrating, target revision 1-29-0",
		"namespaces migrated: 4/10 (40%)", "current batch: shop, payments", "1-29-0", "active revision: 1-28-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("upgrade status lacks %q", want)
		}
	}

	// Two meshes: engage must be told which.
	sample(p, "meshplane_v1alpha1_meshinstall_linkerd.yaml", &meshv1alpha1.MeshInstall{})
	if _, err := p.run("break-glass", "engage", "--reason", "INC-2"); err == nil || !strings.Contains(err.Error(), "--mesh") {
		t.Errorf("engage with two meshes: %v", err)
	}

	if _, err := p.run("break-glass", "engage", "--reason", "INC-3", "--mesh", "cilium-prod"); err == nil || !strings.Contains(err.Error(), "meshinstall cilium-prod not found") {
		t.Errorf("engage with an unknown mesh: %v", err)
	}
	if out := p.mustRun("break-glass", "engage", "--reason", "INC-3", "--mesh", "linkerd", "--namespaces", "a,b", "--name", "inc-3"); !strings.Contains(out, "for mesh linkerd") {
		t.Errorf("engage --mesh linkerd: %q", out)
	}
	bg3 := &meshv1alpha1.BreakGlass{}
	if err := p.c.Get(ctx, client.ObjectKey{Name: "inc-3"}, bg3); err != nil || bg3.Spec.Scope == nil || len(bg3.Spec.Scope.Namespaces) != 2 {
		t.Errorf("inc-3: %v %+v", err, bg3.Spec)
	}

	// restore deletes the BreakGlass.
	if out := p.mustRun("break-glass", "restore", "inc-4711"); !strings.Contains(out, "deleted") {
		t.Errorf("restore: %q", out)
	}
	if err := p.c.Get(ctx, client.ObjectKey{Name: "inc-4711"}, &meshv1alpha1.BreakGlass{}); !apierrors.IsNotFound(err) {
		t.Errorf("BreakGlass still there after restore: %v", err)
	}
	if _, err := p.run("break-glass", "restore", "inc-4711"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("restore of a missing BreakGlass: %v", err)
	}
}
