package v1alpha1

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// Tolerant decoding of stored objects.
//
// The API server stores what the CRD's schema accepted when the object was
// written. An object written before a rule existed (a duration checked only
// since this release, "progressDeadline: banana") is still served as it
// is, and a field whose Go type has its own decoder (metav1.Duration,
// resource.Quantity, intstr.IntOrString, metav1.Time) then fails to
// decode. client-go decodes a List as one document, so one such object
// used to fail the List of its kind: the informer never synced, the
// controller reconciled nothing in any namespace, and a manager restarted
// with one bad MeshInstall exited "timed out waiting for cache to be
// synced".
//
// Every kind therefore decodes tolerantly (UnmarshalJSON below): when the
// strict decode fails, the fields that cannot be decoded are located by
// walking the document along the Go type, removed, and the rest decoded;
// the object keeps a note of what was removed (DecodeError), never written
// back (it is not a JSON field). The controllers' one reconcile entry
// (internal/status.Begin) sees the note, marks the object Stalled with a
// message naming the field, the stored value and the fix, logs it, and
// does nothing else with it; the metrics collector reports the count per
// kind (meshplane_undecodable_objects). Everything else in the List is
// decoded as before, so every other object reconciles.
//
// Trade-offs:
//
//   - Tolerant types, not a tolerant cache. A decoder wrapped around the
//     cache would have to skip the object, so the user would learn of it
//     only from a log line or a metric. Decoding the rest keeps the object
//     visible to the controller, which says on the object itself what is
//     wrong, and to readers of the kind (discovery reads MeshInstalls'
//     providers) with everything that could be read.
//   - The undecodable field is dropped, not defaulted silently: the object
//     is never acted on while the note is set (Begin stops), so the
//     dropped field cannot turn into a default that is then applied.
//   - A deletion of such an object waits for the fix as well (its
//     finalizer stays): cleaning up outputs from a spec that cannot be
//     read could remove the wrong things. The Stalled message says how to
//     fix the field; the CRD's rules accept the corrected value.

// negativeDurations notes every negative metav1.Duration below v: Go parses
// "-5s", no field of the API means anything by it, and the CRDs refuse it
// since durations are validated, so only objects stored before carry one.
func negativeDurations(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return negativeDurations(v.Elem(), path)
		}
	case reflect.Struct:
		if v.Type() == durationType {
			if d := v.Interface().(metav1.Duration); d.Duration < 0 {
				return []string{fmt.Sprintf("%s: %q is negative; set a duration such as 30s, 5m or 1h30m", path, d.Duration.String())}
			}
			return nil
		}
		if v.Type() == objectMetaType {
			return nil
		}
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, inline := jsonName(f)
			p := path
			if !inline {
				p = joinPath(path, name)
			}
			out = append(out, negativeDurations(v.Field(i), p)...)
		}
		return out
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, negativeDurations(v.Index(i), path+"["+strconv.Itoa(i)+"]")...)
		}
		return out
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// maxDecodeFixes bounds the fields removed from one object.
const maxDecodeFixes = 32

// DecodeError says which stored fields could not be decoded and were left
// out; empty for an object decoded as stored.
func (in *CommonStatus) DecodeError() string { return in.undecodable }

// decodeTolerant decodes b into into (a pointer to a kind's struct type
// without its UnmarshalJSON). A document that decodes is decoded exactly
// as the API machinery decodes it; otherwise the fields that fail are
// removed and described in the returned note.
func decodeTolerant(b []byte, into any) (string, error) {
	err := kjson.UnmarshalCaseSensitivePreserveInts(b, into)
	if err == nil {
		return strings.Join(negativeDurations(reflect.ValueOf(into).Elem(), ""), "; "), nil
	}
	var doc map[string]any
	if kjson.UnmarshalCaseSensitivePreserveInts(b, &doc) != nil {
		return "", err
	}
	t := reflect.TypeOf(into).Elem()
	var notes []string
	for range maxDecodeFixes {
		path, perr := firstUndecodable(t, doc, nil)
		if len(path) == 0 {
			break
		}
		notes = append(notes, describe(t, doc, path, perr))
		remove(doc, path)
	}
	clean, merr := json.Marshal(doc)
	if merr != nil || len(notes) == 0 {
		return "", err
	}
	reflect.ValueOf(into).Elem().SetZero()
	if kjson.UnmarshalCaseSensitivePreserveInts(clean, into) != nil {
		return "", err
	}
	return strings.Join(notes, "; "), nil
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	durationType    = reflect.TypeFor[metav1.Duration]()
	objectMetaType  = reflect.TypeFor[metav1.ObjectMeta]()
)

// decodes reports whether v decodes into a value of type t.
func decodes(t reflect.Type, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return kjson.UnmarshalCaseSensitivePreserveInts(raw, reflect.New(t).Interface())
}

// firstUndecodable returns the path (map keys and list indexes) of the
// first value in v that does not decode into t, descending as deep as the
// type goes, and the error; nil when v decodes.
func firstUndecodable(t reflect.Type, v any, path []any) ([]any, error) {
	err := decodes(t, v)
	if err == nil {
		return nil, nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return path, err
	}
	switch t.Kind() {
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			if p, e := firstInStruct(t, m, path); p != nil {
				return p, e
			}
		}
	case reflect.Slice, reflect.Array:
		if l, ok := v.([]any); ok {
			for i, e := range l {
				if p, perr := firstUndecodable(t.Elem(), e, appendPath(path, i)); p != nil {
					return p, perr
				}
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				if p, perr := firstUndecodable(t.Elem(), e, appendPath(path, k)); p != nil {
					return p, perr
				}
			}
		}
	}
	if len(path) == 0 {
		return nil, err
	}
	return path, err
}

// firstInStruct looks for the first undecodable field of struct type t in
// m; inline (embedded) structs share m.
func firstInStruct(t reflect.Type, m map[string]any, path []any) ([]any, error) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, inline := jsonName(f)
		if name == "-" {
			continue
		}
		if inline {
			if p, e := firstInStruct(indirect(f.Type), m, path); p != nil {
				return p, e
			}
			continue
		}
		if sub, ok := m[name]; ok {
			if p, e := firstUndecodable(f.Type, sub, appendPath(path, name)); p != nil {
				return p, e
			}
		}
	}
	return nil, nil
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func appendPath(path []any, e any) []any {
	out := make([]any, len(path), len(path)+1)
	copy(out, path)
	return append(out, e)
}

// jsonName returns a field's JSON name and whether it is inlined.
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" && (f.Anonymous || strings.Contains(","+opts+",", ",inline,")) {
		return "", true
	}
	if name == "" {
		name = f.Name
	}
	return name, false
}

// lookup returns the value at path in doc.
func lookup(doc any, path []any) any {
	cur := doc
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := cur.(map[string]any)
			cur = m[k]
		case int:
			l, _ := cur.([]any)
			if k >= len(l) {
				return nil
			}
			cur = l[k]
		}
	}
	return cur
}

// remove deletes the value at path from doc (a list element is removed
// from its list).
func remove(doc map[string]any, path []any) {
	parent := lookup(doc, path[:len(path)-1])
	switch k := path[len(path)-1].(type) {
	case string:
		if m, ok := parent.(map[string]any); ok {
			delete(m, k)
		}
	case int:
		l, ok := parent.([]any)
		if !ok || k >= len(l) {
			return
		}
		nl := append(append([]any{}, l[:k]...), l[k+1:]...)
		gp := path[:len(path)-1]
		if len(gp) == 0 {
			return
		}
		// Lists are replaced in their parent, which is a map or a list.
		switch pk := gp[len(gp)-1].(type) {
		case string:
			if m, ok := lookup(doc, gp[:len(gp)-1]).(map[string]any); ok {
				m[pk] = nl
			}
		case int:
			if pl, ok := lookup(doc, gp[:len(gp)-1]).([]any); ok && pk < len(pl) {
				pl[pk] = nl
			}
		}
	}
}

// describe is the note for one undecodable field: its path, the stored
// value and what to do.
func describe(root reflect.Type, doc map[string]any, path []any, err error) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			b.WriteString("[" + strconv.Itoa(k) + "]")
		}
	}
	raw, _ := json.Marshal(lookup(doc, path))
	val := string(raw)
	if len(val) > 80 {
		val = val[:77] + "..."
	}
	if fieldType(root, path) == durationType {
		return fmt.Sprintf("%s: %s is not a duration; set a duration such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns)", b.String(), val)
	}
	return fmt.Sprintf("%s: %s cannot be read (%v); set a valid value", b.String(), val, err)
}

// fieldType returns the Go type (pointers removed) at path below root.
func fieldType(root reflect.Type, path []any) reflect.Type {
	t := indirect(root)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			switch t.Kind() {
			case reflect.Struct:
				ft, ok := structField(t, k)
				if !ok {
					return nil
				}
				t = indirect(ft)
			case reflect.Map:
				t = indirect(t.Elem())
			default:
				return nil
			}
		case int:
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return nil
			}
			t = indirect(t.Elem())
		}
	}
	return t
}

// structField finds the field with JSON name name in t or its inline
// structs.
func structField(t reflect.Type, name string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		n, inline := jsonName(f)
		if inline {
			if ft, ok := structField(indirect(f.Type), name); ok {
				return ft, true
			}
			continue
		}
		if n == name {
			return f.Type, true
		}
	}
	return nil, false
}
