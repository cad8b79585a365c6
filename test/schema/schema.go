// Package schema validates objects against the real CRDs in-process: the
// same OpenAPI validation and CEL rules kube-apiserver applies, without a
// server, so fuzz targets can check thousands of outputs a second. The
// envtest tests remain the reference (they also exercise defaulting and
// pruning); this is the fast path.
package schema

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

type versionSchema struct {
	validator  validation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

// Validator validates objects of the kinds its CRDs define.
type Validator struct {
	kinds map[schema.GroupVersionKind]*versionSchema
}

// Load reads every CRD (YAML files, recursively) under dirs; when two
// define the same kind and version, the first one read wins.
func Load(dirs ...string) (*Validator, error) {
	v := &Validator{kinds: map[schema.GroupVersionKind]*versionSchema{}}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
			for {
				crd := &apiextensionsv1.CustomResourceDefinition{}
				if err := dec.Decode(crd); err != nil {
					break
				}
				if crd.Kind != "CustomResourceDefinition" {
					continue
				}
				if err := v.add(crd); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *Validator) add(crd *apiextensionsv1.CustomResourceDefinition) error {
	for _, ver := range crd.Spec.Versions {
		if !ver.Served || ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
			continue
		}
		internal := &apiextensionsinternal.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(ver.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			return err
		}
		sv, _, err := validation.NewSchemaValidator(internal)
		if err != nil {
			return err
		}
		st, err := structuralschema.NewStructural(internal)
		if err != nil {
			return err
		}
		gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind}
		if v.kinds[gvk] != nil {
			continue // the first directory that defines a kind wins
		}
		v.kinds[gvk] = &versionSchema{validator: sv, structural: st, cel: cel.NewValidator(st, true, celconfig.PerCallLimit)}
	}
	return nil
}

// Knows reports whether a CRD defines gvk.
func (v *Validator) Knows(gvk schema.GroupVersionKind) bool { return v.kinds[gvk] != nil }

// Validate applies the CRD's defaults, then its OpenAPI schema and CEL
// rules, to obj (a JSON object with apiVersion and kind), as on create.
func (v *Validator) Validate(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return err
	}
	s := v.kinds[gv.WithKind(kind)]
	if s == nil {
		return fmt.Errorf("no CRD for %s %s", apiVersion, kind)
	}
	obj = deepCopy(obj).(map[string]any)
	structuraldefaulting.Default(obj, s.structural)
	errs := validation.ValidateCustomResource(nil, obj, s.validator)
	celErrs, _ := s.cel.Validate(context.Background(), field.NewPath(""), s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	return errs.ToAggregate()
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	case float64:
		// JSON numbers: integers as int64, as the API server decodes them.
		if x == float64(int64(x)) {
			return int64(x)
		}
		return x
	}
	return v
}
