// Package bundle validates the OperatorHub bundle in bundle/ with
// operator-framework's validation library: the default bundle validators
// plus the optional operatorframework suite that `operator-sdk bundle
// validate --select-optional suite=operatorframework` runs (OperatorHub v2,
// standard capabilities and categories, good practices, deprecated APIs,
// objects). MultipleArchitecturesValidator is left out: it inspects images in
// a registry, and this machine reaches none.
package bundle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	valerrors "github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/controllers/setup"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/test/cluster"
)

// validators is the operatorframework suite plus the defaults.
var validators = append(slices.Clone(validation.DefaultBundleValidators), interfaces.Validators{
	validation.OperatorHubV2Validator,
	validation.StandardCapabilitiesValidator,
	validation.StandardCategoriesValidator,
	validation.GoodPracticesValidator,
	validation.AlphaDeprecatedAPIsValidator,
	validation.ObjectValidator,
}...)

// acceptedWarnings are warnings the bundle is allowed to carry, each with
// the reason it is accepted. Any other warning fails the test.
var acceptedWarnings = map[string]string{
	// The ClusterRole grants events in the core and events.k8s.io groups
	// (RBAC has no versions); the validator flags any events.k8s.io rule as
	// the events.k8s.io/v1beta1 API removed in 1.25. Meshplane uses
	// events.k8s.io/v1.
	// Installing a mesh with Helm creates the mesh's CRDs (its charts ship
	// them); the role has create and update on CRDs, never delete.
	"CSV contains permissions to create CRD": "mesh charts ship their CRDs; Meshplane never deletes one",
}

// rbacOnlyAPIs are the resources the deprecated-API check names because an
// RBAC rule grants them: RBAC rules carry no version, and Meshplane uses
// events.k8s.io/v1, batch/v1 CronJobs, autoscaling/v2 and policy/v1 (mesh
// charts ship HPAs, PDBs and CronJobs).
var rbacOnlyAPIs = map[string]bool{"events": true, "cronjobs": true, "endpointslices": true, "horizontalpodautoscalers": true, "poddisruptionbudgets": true}

var deprecatedAPI = regexp.MustCompile(`(\w+): \(\[`)

// onlyRBACDeprecations reports whether a deprecated-API warning names only
// resources of rbacOnlyAPIs.
func onlyRBACDeprecations(w string) bool {
	if !strings.Contains(w, "deprecated and removed") {
		return false
	}
	m := deprecatedAPI.FindAllStringSubmatch(w, -1)
	for _, g := range m {
		if !rbacOnlyAPIs[g[1]] {
			return false
		}
	}
	return len(m) > 0
}

func bundleDir(t *testing.T) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bundle")
}

// validate runs the suite on the bundle in dir and returns its errors and
// warnings.
func validate(t *testing.T, dir string) (errs, warns []valerrors.Error) {
	t.Helper()
	b, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		return []valerrors.Error{valerrors.ErrInvalidBundle(err.Error(), dir)}, nil
	}
	objs := append(b.ObjectsToValidate(), map[string]string{"k8s-version": "1.37"})
	for _, r := range validators.Validate(objs...) {
		errs = append(errs, r.Errors...)
		warns = append(warns, r.Warnings...)
	}
	return errs, warns
}

func TestBundleValidates(t *testing.T) {
	errs, warns := validate(t, bundleDir(t))
	for _, e := range errs {
		t.Errorf("error: %v", e)
	}
	for _, w := range warns {
		accepted := onlyRBACDeprecations(w.Error())
		if accepted {
			t.Logf("accepted warning (RBAC rules carry no API version): %v", w)
		}
		for s, why := range acceptedWarnings {
			if strings.Contains(w.Error(), s) {
				t.Logf("accepted warning (%s): %v", why, w)
				accepted = true
			}
		}
		if !accepted {
			t.Errorf("warning not in the accept-list: %v", w)
		}
	}
}

func readCSV(t *testing.T, dir string) *operatorsv1alpha1.ClusterServiceVersion {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifests", "meshplane.clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := yaml.UnmarshalStrict(b, csv); err != nil {
		t.Fatal(err)
	}
	return csv
}

// copyBundle copies the bundle into a temporary directory with the CSV
// changed by mutate.
func copyBundle(t *testing.T, mutate func(csv map[string]any)) string {
	t.Helper()
	src := bundleDir(t)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(rel, ".clusterserviceversion.yaml") {
			var m map[string]any
			if err := yaml.Unmarshal(b, &m); err != nil {
				return err
			}
			mutate(m)
			if b, err = yaml.Marshal(m); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBrokenCSVsRejected(t *testing.T) {
	want := map[string]string{
		"no install modes": "install modes", "unknown capability level": "capabilities level", "alm-examples not JSON": "invalid character",
		"bad minKubeVersion": "MinKubeVersion", "owned kind without CRD": "provided API", "owned version not served": "provided API",
		"no name": "metadata.name", "unknown category": "standard categories",
	}
	for name, mutate := range map[string]func(m map[string]any){
		"no install modes": func(m map[string]any) { unstructured.RemoveNestedField(m, "spec", "installModes") },
		"unknown capability level": func(m map[string]any) {
			_ = unstructured.SetNestedField(m, "Wizard", "metadata", "annotations", "capabilities")
		},
		"alm-examples not JSON": func(m map[string]any) {
			_ = unstructured.SetNestedField(m, "[{not json", "metadata", "annotations", "alm-examples")
		},
		"bad minKubeVersion": func(m map[string]any) { _ = unstructured.SetNestedField(m, "one-point-37", "spec", "minKubeVersion") },
		"owned kind without CRD": func(m map[string]any) {
			owned, _, _ := unstructured.NestedSlice(m, "spec", "customresourcedefinitions", "owned")
			owned[0].(map[string]any)["name"] = "gizmos.meshplane.io"
			owned[0].(map[string]any)["kind"] = "Gizmo"
			_ = unstructured.SetNestedSlice(m, owned, "spec", "customresourcedefinitions", "owned")
		},
		"owned version not served": func(m map[string]any) {
			owned, _, _ := unstructured.NestedSlice(m, "spec", "customresourcedefinitions", "owned")
			owned[0].(map[string]any)["version"] = "v9"
			_ = unstructured.SetNestedSlice(m, owned, "spec", "customresourcedefinitions", "owned")
		},
		"no name": func(m map[string]any) { unstructured.RemoveNestedField(m, "metadata", "name") },
		"unknown category": func(m map[string]any) {
			_ = unstructured.SetNestedField(m, "Mesh Magic", "metadata", "annotations", "categories")
		},
	} {
		t.Run(name, func(t *testing.T) {
			errs, _ := validate(t, copyBundle(t, mutate))
			if len(errs) == 0 {
				t.Fatalf("the broken CSV validated")
			}
			found := false
			for _, e := range errs {
				found = found || strings.Contains(e.Error(), want[name])
			}
			if !found {
				t.Errorf("rejected, but not for %q: %v", want[name], errs)
			}
		})
	}
}

// TestCSVHonestAboutControllers checks that exactly the kinds without a
// controller in controllers/setup are described as not reconciled.
func TestCSVHonestAboutControllers(t *testing.T) {
	csv := readCSV(t, bundleDir(t))
	reconciled := map[string]bool{}
	for _, k := range setup.ReconciledKinds() {
		reconciled[k] = true
	}
	owned := map[string]bool{}
	for _, d := range csv.Spec.CustomResourceDefinitions.Owned {
		owned[d.Kind] = true
		says := strings.Contains(d.Description, "Not reconciled by this version")
		if says == reconciled[d.Kind] {
			t.Errorf("%s: reconciled=%v but the CSV description says %q (run make bundle)", d.Kind, reconciled[d.Kind], d.Description)
		}
	}
	for _, k := range manager.Kinds {
		if !owned[k] {
			t.Errorf("the CSV does not own %s", k)
		}
	}
	for _, k := range []string{"Canary", "BreakGlass"} {
		if !reconciled[k] && !strings.Contains(csv.Spec.Description, k) {
			t.Errorf("the CSV description does not list %s as not yet reconciled", k)
		}
	}
	if csv.Spec.MinKubeVersion != "1.37.0" || csv.Annotations["capabilities"] != "Basic Install" {
		t.Errorf("minKubeVersion %q capabilities %q", csv.Spec.MinKubeVersion, csv.Annotations["capabilities"])
	}
}

// TestALMExamplesDryRun creates every alm-example with a server-side dry
// run against envtest's real CRDs (OpenAPI and CEL).
func TestALMExamplesDryRun(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	csv := readCSV(t, bundleDir(t))
	var examples []map[string]any
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &examples); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	ctx := context.Background()
	for _, e := range examples {
		u := &unstructured.Unstructured{Object: e}
		kinds[u.GetKind()] = true
		if ns := u.GetNamespace(); ns != "" {
			err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
		if err := c.Create(ctx, u, client.DryRunAll); err != nil {
			t.Errorf("alm-example %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	for _, k := range manager.Kinds {
		if !kinds[k] {
			t.Errorf("no alm-example for %s", k)
		}
	}
}
