package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// StoreUnvalidated stores obj as an object written before the CRD's
// validation rules existed: it loosens the CRD of obj's kind (no CEL
// rules, patterns, formats or length limits anywhere in its schema),
// creates obj, and puts the CRD back, waiting until the API server refuses
// obj again (a server-side dry run), so the rules are in force when it
// returns. Other writers of the same kind on the same API server may
// briefly see the loosened schema.
func StoreUnvalidated(t testing.TB, c client.Client, obj *unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	gvk := obj.GroupVersionKind()
	crd := findCRD(t, c, gvk.Group, gvk.Kind)
	original := crd.Spec.DeepCopy()
	for i := range crd.Spec.Versions {
		if s := crd.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
			loosen(s.OpenAPIV3Schema)
		}
	}
	if err := c.Update(ctx, crd); err != nil {
		t.Fatalf("loosening CRD %s: %v", crd.Name, err)
	}
	Eventually(t, DefaultTimeout, "storing "+gvk.Kind+" "+obj.GetName()+" without validation", func() error {
		return c.Create(ctx, obj.DeepCopy())
	})
	Eventually(t, DefaultTimeout, "restoring CRD "+crd.Name, func() error {
		cur := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, cur); err != nil {
			return err
		}
		cur.Spec = *original
		return c.Update(ctx, cur)
	})
	Eventually(t, DefaultTimeout, "the rules of "+crd.Name+" in force again", func() error {
		probe := obj.DeepCopy()
		probe.SetName(obj.GetName() + "-probe")
		probe.SetResourceVersion("")
		err := c.Create(ctx, probe, client.DryRunAll)
		if err == nil {
			return fmt.Errorf("a copy of %s is still accepted", obj.GetName())
		}
		return nil
	})
}

// findCRD returns the CRD serving kind in group.
func findCRD(t testing.TB, c client.Client, group, kind string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Spec.Group == group && list.Items[i].Spec.Names.Kind == kind {
			return &list.Items[i]
		}
	}
	t.Fatalf("no CRD serves %s.%s", kind, group)
	return nil
}

// loosen removes every rule from a schema that a value could break
// without changing its type.
func loosen(s *apiextensionsv1.JSONSchemaProps) {
	s.XValidations = nil
	s.Pattern = ""
	s.Format = ""
	s.MaxLength, s.MinLength = nil, nil
	s.Enum = nil
	s.Maximum, s.Minimum = nil, nil
	s.MaxItems, s.MinItems = nil, nil
	for k, p := range s.Properties {
		loosen(&p)
		s.Properties[k] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		loosen(s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		loosen(s.AdditionalProperties.Schema)
	}
}

// Parse reads a YAML or JSON object into an Unstructured; a test helper for
// objects the typed API cannot express.
func Parse(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(strings.TrimSpace(doc)), &u.Object); err != nil {
		t.Fatalf("bad test object: %v\n%s", err, doc)
	}
	if _, err := meta.Accessor(u); err != nil {
		t.Fatal(err)
	}
	return u
}
