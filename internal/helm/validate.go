package helm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Validate checks a whole change before any release of it moves: it renders
// every release (as Render does) and then sends every rendered object to
// the API server in a server-side apply dry run (dryRun=All, field
// validation Strict), with the field manager Helm's own apply uses. Helm's
// server dry run only renders; this is what the API server would say to
// the real upgrade. For a release not installed yet, the CRDs of the
// chart's crds/ directory are dry-run too (Helm creates them on install;
// it never touches them on upgrade).
//
// The first refusal is terminal (OutputRejected), naming the chart, the
// object, the fields and the API server's message. Nothing is written:
// no release revision, no object.
func (e *Engine) Validate(ctx context.Context, rels []Release) error {
	for _, rel := range rels {
		if err := e.validateOne(ctx, rel); err != nil {
			return err
		}
	}
	return nil
}

// dryRunManifest dry-runs every object of a rendered manifest of ch as
// release rel, and the CRDs of ch's crds/ directory when crds is set.
func (e *Engine) dryRunManifest(ctx context.Context, ch *chartv2.Chart, rel Release, manifest string, crds []string) error {
	dyn, err := dynamic.NewForConfig(e.cfg)
	if err != nil {
		return err
	}
	chart := fmt.Sprintf("chart %s %s (release %s/%s)", ch.Metadata.Name, ch.Metadata.Version, rel.Namespace, rel.Name)
	for _, doc := range append(splitDocs(manifest), crds...) {
		if err := e.dryRunApply(ctx, dyn, rel.Namespace, chart, doc); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) validateOne(ctx context.Context, rel Release) error {
	ch, err := e.Load(ctx, rel.Chart, rel.Version, rel.Source)
	if err != nil {
		return err
	}
	cfg, err := e.actionConfig(rel.Namespace)
	if err != nil {
		return err
	}
	last, err := lastRelease(cfg, rel.Name)
	if err != nil {
		return err
	}
	exists := last != nil && last.Info.Status != rcommon.StatusUninstalled
	manifest, err := e.render(ctx, cfg, ch, rel, rel.Values, exists, rel.TakeOwnership)
	if err != nil {
		return err
	}
	var crds []string
	if !exists {
		for _, f := range ch.CRDObjects() {
			crds = append(crds, splitDocs(string(f.File.Data))...)
		}
	}
	return e.dryRunManifest(ctx, ch, rel, manifest, crds)
}

// dryRunApply sends one rendered document to the API server in a
// server-side apply dry run.
func (e *Engine) dryRunApply(ctx context.Context, dyn dynamic.Interface, namespace, chart, doc string) error {
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		return outcome.Stalled(meshv1alpha1.RenderFailedReason, "%s renders an object that is not valid YAML: %v; fix the values", chart, err)
	}
	if len(obj.Object) == 0 || obj.GetKind() == "" {
		return nil
	}
	gvk := obj.GroupVersionKind()
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			// render already refused kinds the server does not serve; a
			// CRD of crds/ may define one that only its install adds.
			return nil
		}
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(namespace)
		}
		ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	body, err := json.Marshal(obj.Object)
	if err != nil {
		return err
	}
	force := true
	_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
		DryRun: []string{metav1.DryRunAll}, Force: &force, FieldManager: fieldManager(),
		FieldValidation: metav1.FieldValidationStrict,
	})
	if err == nil || namespaceMissing(err) {
		// A namespace the change itself creates (Cilium's
		// cilium-secrets) does not exist for the dry run: its objects
		// cannot be validated before it does.
		return nil
	}
	what := gvk.Kind + " " + obj.GetName()
	if obj.GetNamespace() != "" {
		what = gvk.Kind + " " + obj.GetNamespace() + "/" + obj.GetName()
	}
	if !refusal(err) {
		return fmt.Errorf("dry run of %s of %s: %w", what, chart, err)
	}
	fields := refusedFields(err)
	if fields == "" {
		fields = badQuantities(obj.Object, "")
	}
	return outcome.Stalled(meshv1alpha1.OutputRejectedReason,
		"%s: the API server refuses %s%s in a dry run: %v; fix the values (spec.values or spec.components); no release was changed",
		chart, what, fields, err)
}

// quantityMaps are the keys whose values are resource quantities.
var quantityMaps = map[string]bool{"requests": true, "limits": true, "overhead": true, "hard": true, "capacity": true}

// badQuantities names the first value under a quantity map that is not a
// quantity, as " (field <path>: <value>)": the API server's conversion
// error does not say which field it was.
func badQuantities(v any, path string) string {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := strings.TrimPrefix(path+"."+k, ".")
			if quantityMaps[k] {
				if q, ok := t[k].(map[string]any); ok {
					for _, name := range slices.Sorted(maps.Keys(q)) {
						if _, err := resource.ParseQuantity(fmt.Sprint(q[name])); err != nil {
							return fmt.Sprintf(" (field %s.%s: %q)", p, name, fmt.Sprint(q[name]))
						}
					}
				}
			}
			if f := badQuantities(t[k], p); f != "" {
				return f
			}
		}
	case []any:
		for i, e := range t {
			if f := badQuantities(e, fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	}
	return ""
}

// namespaceMissing reports whether err says the object's namespace does
// not exist.
func namespaceMissing(err error) bool {
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) || st.Status().Details == nil {
		return false
	}
	return st.Status().Details.Kind == "namespaces"
}

// refusal reports whether err is the API server refusing the object rather
// than failing to answer.
func refusal(err error) bool {
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsUnsupportedMediaType(err) {
		return true
	}
	// Conversion failures (a string where a number or quantity belongs)
	// come back as 500; they are about the object all the same.
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	msg := st.Status().Message
	return strings.Contains(msg, "failed to create typed patch object") || strings.Contains(msg, "failed to convert new object") ||
		strings.Contains(msg, "unable to convert unstructured object")
}

// refusedFields names the fields an API status lists, as " (field a, b)".
func refusedFields(err error) string {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return ""
	}
	var names []string
	for _, c := range st.Status().Details.Causes {
		if c.Field != "" && !slices.Contains(names, c.Field) {
			names = append(names, c.Field)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (field " + strings.Join(names, ", ") + ")"
}

// fieldManager is the field manager Helm's server-side apply uses, so the
// dry run computes the same ownership the real upgrade will.
func fieldManager() string {
	if kube.ManagedFieldsManager != "" {
		return kube.ManagedFieldsManager
	}
	if os.Args[0] == "" {
		return "unknown"
	}
	return filepath.Base(os.Args[0])
}
