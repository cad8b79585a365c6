package incident

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// Get reads the field at path of an unstructured object.
func Get(obj map[string]any, path []string) Value {
	var cur any = obj
	for _, seg := range path {
		switch m := cur.(type) {
		case map[string]any:
			v, ok := m[seg]
			if !ok {
				return Absent
			}
			cur = v
		case []any:
			name, ok := listKey(seg)
			if !ok {
				return Absent
			}
			el := findNamed(m, name)
			if el == nil {
				return Absent
			}
			cur = el
		default:
			return Absent
		}
	}
	if cur == nil {
		return Absent
	}
	return ValueOf(cur)
}

// Set writes (or, for an absent value, removes) the field at path of an
// unstructured object, creating intermediate maps. A missing list element
// is an error: Meshplane never adds webhooks, only edits them.
func Set(obj map[string]any, path []string, v Value) error {
	if len(path) == 0 {
		return fmt.Errorf("empty path")
	}
	var cur any = obj
	for i, seg := range path[:len(path)-1] {
		switch m := cur.(type) {
		case map[string]any:
			next, ok := m[seg]
			if !ok || next == nil {
				if !v.Present {
					return nil // nothing to remove
				}
				if _, isList := listKey(path[i+1]); isList {
					return fmt.Errorf("list %s is missing", strings.Join(path[:i+1], "."))
				}
				next = map[string]any{}
				m[seg] = next
			}
			cur = next
		case []any:
			name, ok := listKey(seg)
			if !ok {
				return fmt.Errorf("segment %q of %s is not a list key", seg, strings.Join(path, "."))
			}
			el := findNamed(m, name)
			if el == nil {
				return fmt.Errorf("no element named %q in %s", name, strings.Join(path[:i], "."))
			}
			cur = el
		default:
			return fmt.Errorf("%s is not an object", strings.Join(path[:i+1], "."))
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not an object", strings.Join(path[:len(path)-1], "."))
	}
	last := path[len(path)-1]
	if !v.Present {
		delete(m, last)
		return nil
	}
	m[last] = runtime.DeepCopyJSONValue(normalise(v.Decode()))
	return nil
}

// normalise turns JSON numbers decoded as float64 into int64 where they are
// integral, as the API machinery's unstructured objects hold them.
func normalise(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
		return x
	}
	return v
}

// ListKey renders the path segment that selects the element named name.
func ListKey(name string) string { return "[name=" + name + "]" }

func listKey(seg string) (string, bool) {
	if strings.HasPrefix(seg, "[name=") && strings.HasSuffix(seg, "]") {
		return seg[len("[name=") : len(seg)-1], true
	}
	return "", false
}

func findNamed(list []any, name string) map[string]any {
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}
