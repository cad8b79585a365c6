package chart

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
)

// haValues are the high-availability values the tests render and install.
func haValues() map[string]any {
	return map[string]any{
		"replicaCount": 2,
		"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true},
			"readerServiceAccounts": []any{map[string]any{"name": "prometheus", "namespace": Namespace}}},
		"crds":       map[string]any{"templated": true},
		"concurrent": map[string]any{"all": 2, "canary": 4},
	}
}

func render(t *testing.T, vals map[string]any, crds bool) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(vals, crds)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return objs
}

func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func one[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) *T {
	t.Helper()
	l := byKind(objs, kind)
	if len(l) != 1 {
		t.Fatalf("want one %s, rendered %d", kind, len(l))
	}
	v := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(l[0].Object, v, true); err != nil {
		t.Fatalf("%s does not decode strictly: %v", kind, err)
	}
	return v
}

func TestLintStrict(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := chartcommon.ParseKubeVersion("v1.37.0")
	for name, vals := range map[string]map[string]any{"default": nil, "ha": haValues()} {
		lint := action.NewLint()
		lint.Strict = true
		lint.Namespace = Namespace
		lint.KubeVersion = kv
		res := lint.Run([]string{dir}, vals)
		for _, m := range res.Messages {
			t.Logf("%s: %s", name, m.Error())
		}
		if res.TotalChartsLinted != 1 || len(res.Errors) > 0 {
			t.Errorf("%s: helm lint --strict: %d charts linted, errors %v", name, res.TotalChartsLinted, res.Errors)
		}
	}
}

func TestTemplateDefault(t *testing.T) {
	objs := render(t, nil, false)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if ns := o.GetNamespace(); ns != "" && ns != Namespace {
			t.Errorf("%s/%s in namespace %q", o.GetKind(), o.GetName(), ns)
		}
		if o.GetLabels()["app.kubernetes.io/instance"] != ReleaseName {
			t.Errorf("%s/%s lacks the instance label", o.GetKind(), o.GetName())
		}
	}
	want := map[string]int{"ServiceAccount": 1, "ClusterRole": 2, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Service": 1, "Deployment": 1}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("rendered kinds %v, want %v", kinds, want)
	}
	d := one[appsv1.Deployment](t, objs, "Deployment")
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	checkRestrictedPodSpec(t, d)
	c := d.Spec.Template.Spec.Containers[0]
	for _, arg := range []string{"--leader-elect=true", "--leader-election-namespace=" + Namespace, "--operator-namespace=" + Namespace, "--metrics-bind-address=:8443", "--metrics-secure=true", "--health-probe-bind-address=:8081"} {
		if !containsString(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %v liveness %v", c.ReadinessProbe, c.LivenessProbe)
	}
	if d.Spec.Template.Spec.ServiceAccountName != ReleaseName {
		t.Errorf("serviceAccountName %q", d.Spec.Template.Spec.ServiceAccountName)
	}
}

func checkRestrictedPodSpec(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", ps.SecurityContext)
	}
	for _, c := range ps.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s securityContext %+v is not restricted", c.Name, sc)
		}
	}
}

func TestTemplateHA(t *testing.T) {
	objs := render(t, haValues(), false)
	d := one[appsv1.Deployment](t, objs, "Deployment")
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
	}
	if a := d.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil {
		t.Errorf("two replicas without pod anti-affinity")
	}
	if !containsString(d.Spec.Template.Spec.Containers[0].Args, "--leader-elect=true") {
		t.Errorf("HA without leader election")
	}
	pdb := one[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PDB minAvailable %v, want 1", pdb.Spec.MinAvailable)
	}
	if sm := byKind(objs, "ServiceMonitor"); len(sm) != 1 {
		t.Errorf("serviceMonitor.enabled rendered no ServiceMonitor")
	} else {
		// Secure metrics: HTTPS with Prometheus's service account token.
		eps, _, _ := unstructured.NestedSlice(sm[0].Object, "spec", "endpoints")
		ep, _ := eps[0].(map[string]any)
		if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
			t.Errorf("ServiceMonitor endpoint %v: want scheme https and the service account token", ep)
		}
	}
	var readerBound bool
	for _, b := range byKind(objs, "ClusterRoleBinding") {
		if b.GetName() == ReleaseName+"-metrics-reader" {
			readerBound = true
		}
	}
	if !readerBound {
		t.Errorf("metrics.readerServiceAccounts rendered no metrics-reader ClusterRoleBinding")
	}
	checkTemplatedCRDs(t, byKind(objs, "CustomResourceDefinition"))
}

// checkTemplatedCRDs compares the templated CRDs with config/crd/bases.
func checkTemplatedCRDs(t *testing.T, crds []*unstructured.Unstructured) {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, cluster.MeshplaneCRDPath, "*.yaml"))
	if len(crds) != len(files) || len(files) == 0 {
		t.Fatalf("templated %d CRDs, config/crd/bases holds %d", len(crds), len(files))
	}
	want := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		want[(&unstructured.Unstructured{Object: m}).GetName()] = m
	}
	for _, c := range crds {
		if c.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("templated CRD %s lacks helm.sh/resource-policy: keep", c.GetName())
		}
		w, ok := want[c.GetName()]
		if !ok {
			t.Errorf("templated CRD %s is not in config/crd/bases", c.GetName())
			continue
		}
		if !reflect.DeepEqual(normalise(t, c.Object["spec"]), normalise(t, w["spec"])) {
			t.Errorf("templated CRD %s differs from config/crd/bases (run make chart)", c.GetName())
		}
	}
}

// normalise round-trips through YAML so numbers compare equal.
func normalise(t *testing.T, v any) any {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCRDFolderMatchesConfig(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, cluster.MeshplaneCRDPath, "*.yaml"))
	got, _ := filepath.Glob(filepath.Join(root, "charts", "meshplane", "crds", "*"))
	if len(got) != len(files) {
		t.Fatalf("charts/meshplane/crds has %d files, config/crd/bases %d (run make chart)", len(got), len(files))
	}
	for _, f := range files {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(root, "charts", "meshplane", "crds", filepath.Base(f)))
		if err != nil || string(a) != string(b) {
			t.Errorf("charts/meshplane/crds/%s is stale (run make chart)", filepath.Base(f))
		}
	}
}

func TestClusterRoleEqualsMarkers(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(b, &want); err != nil {
		t.Fatal(err)
	}
	got := namedClusterRole(t, render(t, nil, false), ReleaseName+"-manager")
	if !reflect.DeepEqual(got.Rules, want.Rules) {
		t.Errorf("chart ClusterRole rules differ from config/rbac/role.yaml (run make manifests chart)\n got: %v\nwant: %v", got.Rules, want.Rules)
	}
	for _, r := range got.Rules {
		for _, v := range append(append(append([]string{}, r.APIGroups...), r.Resources...), r.Verbs...) {
			if strings.Contains(v, "*") {
				t.Errorf("wildcard %q in rule %v", v, r)
			}
		}
	}
}

func namedClusterRole(t *testing.T, objs []*unstructured.Unstructured, name string) *rbacv1.ClusterRole {
	t.Helper()
	for _, o := range byKind(objs, "ClusterRole") {
		if o.GetName() == name {
			r := &rbacv1.ClusterRole{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, r, true); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("no ClusterRole %s rendered", name)
	return nil
}

// TestMetricsReaderRole: the chart's metrics-reader ClusterRole grants what
// config/rbac/metrics_reader_role.yaml does (GET on /metrics), and plain
// HTTP is an explicit choice.
func TestMetricsReaderRole(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "metrics_reader_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(b, &want); err != nil {
		t.Fatal(err)
	}
	got := namedClusterRole(t, render(t, nil, false), ReleaseName+"-metrics-reader")
	if !reflect.DeepEqual(got.Rules, want.Rules) {
		t.Errorf("metrics-reader rules %v, want %v (run make chart)", got.Rules, want.Rules)
	}
	d := one[appsv1.Deployment](t, render(t, map[string]any{"metrics": map[string]any{"secure": false, "port": 8080}}, false), "Deployment")
	if !containsString(d.Spec.Template.Spec.Containers[0].Args, "--metrics-secure=false") {
		t.Errorf("metrics.secure=false: args %v", d.Spec.Template.Spec.Containers[0].Args)
	}
}

func TestCanaryMetricsServer(t *testing.T) {
	d := one[appsv1.Deployment](t, render(t, map[string]any{"canaryMetricsServer": "http://prometheus.monitoring:9090"}, false), "Deployment")
	if !containsString(d.Spec.Template.Spec.Containers[0].Args, "--metrics-server=http://prometheus.monitoring:9090") {
		t.Errorf("args %v", d.Spec.Template.Spec.Containers[0].Args)
	}
	d = one[appsv1.Deployment](t, render(t, nil, false), "Deployment")
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--metrics-server") {
			t.Errorf("default values render %s", a)
		}
	}
}

// TestConcurrent renders the concurrent value into --concurrent, checks the
// manager parses what the chart renders, and that the schema names exactly
// the manager's controllers.
func TestConcurrent(t *testing.T) {
	args := func(vals map[string]any) []string {
		return one[appsv1.Deployment](t, render(t, vals, false), "Deployment").Spec.Template.Spec.Containers[0].Args
	}
	for _, a := range args(nil) {
		if strings.HasPrefix(a, "--concurrent") {
			t.Errorf("default values render %s", a)
		}
	}
	for _, tc := range []struct {
		vals map[string]any
		want string
		of   map[string]int
	}{
		{map[string]any{"all": 2, "canary": 16}, "--concurrent=2,canary=16", map[string]int{"canary": 16, "trafficsplit": 2, "meshinstall": 2}},
		{map[string]any{"trafficsplit": 8, "zerotrustpolicy": 6}, "--concurrent=trafficsplit=8,zerotrustpolicy=6",
			map[string]int{"trafficsplit": 8, "zerotrustpolicy": 6, "canary": manager.DefaultConcurrency["canary"]}},
		{map[string]any{"all": 256}, "--concurrent=256", map[string]int{"breakglass": 256}},
	} {
		var rendered string
		for _, a := range args(map[string]any{"concurrent": tc.vals}) {
			if strings.HasPrefix(a, "--concurrent") {
				rendered = a
			}
		}
		if rendered != tc.want {
			t.Errorf("concurrent %v: rendered %q, want %q", tc.vals, rendered, tc.want)
			continue
		}
		var o manager.Options
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse([]string{rendered}); err != nil {
			t.Errorf("the manager refuses %s: %v", rendered, err)
			continue
		}
		for name, want := range tc.of {
			if got := o.ConcurrencyOf(name); got != want {
				t.Errorf("%s: %s gets %d workers, want %d", rendered, name, got, want)
			}
		}
	}

	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for name := range schema.Properties["concurrent"].Properties {
		got = append(got, name)
	}
	for name := range manager.DefaultConcurrency {
		want = append(want, name)
	}
	want = append(want, "all")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("values.schema.json concurrent names %v, want the manager's controllers and all: %v", got, want)
	}
}

func TestBadValuesRejected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vals  map[string]any
		field string
	}{
		{"unknown top-level key", map[string]any{"replicas": 2}, "replicas"},
		{"unknown nested key", map[string]any{"image": map[string]any{"registry": "x"}}, "registry"},
		{"three replicas", map[string]any{"replicaCount": 3}, "replicaCount"},
		{"replicas as a string", map[string]any{"replicaCount": "2"}, "replicaCount"},
		{"tag as a number", map[string]any{"image": map[string]any{"tag": 1}}, "tag"},
		{"unknown log level", map[string]any{"logLevel": "trace"}, "logLevel"},
		{"port out of range", map[string]any{"metrics": map[string]any{"port": 0}}, "port"},
		{"unknown resource", map[string]any{"resources": map[string]any{"requests": map[string]any{"gpu": 1}}}, "gpu"},
		{"bad namespace", map[string]any{"watchNamespaces": []any{"Shop"}}, "watchNamespaces"},
		{"leader election as a string", map[string]any{"leaderElection": map[string]any{"enabled": "yes"}}, "enabled"},
		{"HA without leader election", map[string]any{"replicaCount": 2, "leaderElection": map[string]any{"enabled": false}}, "leaderElection.enabled"},
		{"metrics server without a scheme", map[string]any{"canaryMetricsServer": "prometheus:9090"}, "canaryMetricsServer"},
		{"concurrent for an unknown controller", map[string]any{"concurrent": map[string]any{"gateway": 2}}, "gateway"},
		{"concurrent 0", map[string]any{"concurrent": map[string]any{"all": 0}}, "all"},
		{"concurrent 300", map[string]any{"concurrent": map[string]any{"canary": 300}}, "canary"},
		{"concurrent as a string", map[string]any{"concurrent": "canary=4"}, "concurrent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.vals, false)
			if err == nil {
				t.Fatalf("values %v rendered", tc.vals)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error does not name %s: %v", tc.field, err)
			}
		})
	}
}

func containsString(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// TestDefaultImageIsMakeImage: the chart's default image is the one `make
// image` builds, <Makefile IMAGE_REPO>:v<VERSION> (make chart writes it).
func TestDefaultImageIsMakeImage(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	_, want, err := MakeImage(root)
	if err != nil {
		t.Fatal(err)
	}
	d := one[appsv1.Deployment](t, render(t, nil, false), "Deployment")
	if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("default image %s, make image builds %s (run make chart)", got, want)
	}
}
