package helm

import (
	"encoding/json"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Merge returns a new map with over merged into base, recursively for
// nested maps; a nil value in over deletes the key. Neither input is
// modified.
func Merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = deepCopy(v)
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = Merge(bm, om)
			continue
		}
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return Merge(t, nil)
	case []any:
		c := make([]any, len(t))
		for i := range t {
			c[i] = deepCopy(t[i])
		}
		return c
	default:
		return v
	}
}

// FromJSON decodes user values; nil gives an empty map. A value that is not
// a JSON object is a terminal error naming field.
func FromJSON(field string, j *apiextensionsv1.JSON) (map[string]any, error) {
	if j == nil || len(j.Raw) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(j.Raw, &m); err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%s must be a map of Helm values: %v", field, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// Compose layers the values of one chart: provider defaults, spec.values,
// spec.components[chart].values, extra (a MeshRevision's values), and the
// provider's enforced values.
func Compose(p mesh.Installer, mi *meshv1alpha1.MeshInstall, c mesh.Chart, ic mesh.InstallContext, extra *apiextensionsv1.JSON) (map[string]any, error) {
	v := p.Values(mi, c, ic)
	user, err := FromJSON("spec.values", mi.Spec.Values)
	if err != nil {
		return nil, err
	}
	v = Merge(v, user)
	for i, cv := range mi.Spec.Components {
		if cv.Chart != c.Name {
			continue
		}
		cm, err := FromJSON(fmt.Sprintf("spec.components[%d].values", i), &cv.Values)
		if err != nil {
			return nil, err
		}
		v = Merge(v, cm)
	}
	if extra != nil {
		em, err := FromJSON("MeshRevision spec.values", extra)
		if err != nil {
			return nil, err
		}
		v = Merge(v, em)
	}
	return Merge(v, p.Enforced(mi, c, ic)), nil
}

// UnknownComponents returns a terminal error when spec.components names a
// chart the mesh does not install.
func UnknownComponents(mi *meshv1alpha1.MeshInstall, charts []mesh.Chart) error {
	known := map[string]bool{}
	names := make([]string, 0, len(charts))
	for _, c := range charts {
		known[c.Name] = true
		names = append(names, c.Name)
	}
	for _, cv := range mi.Spec.Components {
		if !known[cv.Chart] {
			return outcome.Stalled(meshv1alpha1.InvalidSpecReason,
				"spec.components names chart %q, which %s with this profile does not install; use one of %v",
				cv.Chart, mi.Spec.Provider, names)
		}
	}
	return nil
}
