package incident

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// State is where one change stands against the live object.
type State int

const (
	// Pending: the field still has its prior value.
	Pending State = iota
	// Applied: the field has the value the BreakGlass sets.
	Applied
	// Conflicting: the field has neither value; someone else changed it.
	Conflicting
)

func (s State) String() string {
	return [...]string{"Pending", "Applied", "Conflicting"}[s]
}

// Classify compares a change with the live object.
func Classify(obj map[string]any, c Change) State {
	if c.Element {
		if hasElement(Get(obj, c.Path), c.Set) {
			return Applied
		}
		return Pending
	}
	cur := Get(obj, c.Path)
	switch {
	case cur.Equal(c.Set):
		return Applied
	case cur.Equal(c.Prior):
		return Pending
	default:
		return Conflicting
	}
}

// Conflict is a field found with a value the BreakGlass neither recorded
// nor set; it is left as found.
type Conflict struct {
	Change  Change
	Current Value
	// Deleted is true when the whole object was deleted during the
	// incident (it is not recreated).
	Deleted bool
}

// Message says what was found and what was kept.
func (c Conflict) Message(restoring bool) string {
	if c.Deleted {
		return "the object was deleted during the incident; it is not recreated"
	}
	if restoring {
		return fmt.Sprintf("changed during the incident to %s (break-glass set %s, was %s); kept as found, not restored",
			short(c.Current), short(c.Change.Set), short(c.Change.Prior))
	}
	return fmt.Sprintf("changed before the break-glass could apply it: found %s (recorded %s, to set %s); left as found",
		short(c.Current), short(c.Change.Prior), short(c.Change.Set))
}

func short(v Value) string {
	s := v.String()
	if len(s) > 200 {
		return s[:197] + "..."
	}
	return s
}

// Outcome is what Engage or Restore decided for one object.
type Outcome struct {
	// Modified is a copy of the object with the writes applied; nil when
	// nothing is to be written.
	Modified map[string]any
	// Writes are the changes applied to Modified.
	Writes []Change
	// Done are the changes already in the wanted state.
	Done int
	// Conflicts are the fields left as found.
	Conflicts []Conflict
}

// Engage decides the writes that apply changes to obj: pending fields get
// their Set value, applied ones are left, conflicting ones are reported.
func Engage(obj map[string]any, changes []Change) (Outcome, error) {
	return decide(obj, changes, Pending, func(c Change) Value { return c.Set })
}

// hasElement reports whether the list value holds an element equal to el.
func hasElement(list, el Value) bool {
	l, _ := list.Decode().([]any)
	for _, e := range l {
		if ValueOf(e).Equal(el) {
			return true
		}
	}
	return false
}

// elementWrite returns the list at c.Path with c.Set appended (engaging)
// or its first equal element removed (restoring; absent when the list
// becomes empty, as it was before the first BreakGlass added to it).
func elementWrite(obj map[string]any, c Change, restoring bool) Value {
	l, _ := Get(obj, c.Path).Decode().([]any)
	if !restoring {
		return ValueOf(append(l, c.Set.Decode()))
	}
	out := make([]any, 0, len(l))
	removed := false
	for _, e := range l {
		if !removed && ValueOf(e).Equal(c.Set) {
			removed = true
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return Absent
	}
	return ValueOf(out)
}

// Restore decides the writes that put obj back: applied fields get their
// Prior value, pending ones (never applied, or already restored) are left,
// conflicting ones are reported and never overwritten.
func Restore(obj map[string]any, changes []Change) (Outcome, error) {
	return decide(obj, changes, Applied, func(c Change) Value { return c.Prior })
}

func decide(obj map[string]any, changes []Change, writeWhen State, target func(Change) Value) (Outcome, error) {
	restoring := writeWhen == Applied
	var out Outcome
	var mod map[string]any
	for _, c := range changes {
		switch Classify(obj, c) {
		case Conflicting:
			out.Conflicts = append(out.Conflicts, Conflict{Change: c, Current: Get(obj, c.Path)})
		case writeWhen:
			if mod == nil {
				mod = runtime.DeepCopyJSON(obj)
			}
			v := target(c)
			if c.Element {
				v = elementWrite(mod, c, restoring)
			}
			if err := Set(mod, c.Path, v); err != nil {
				return Outcome{}, fmt.Errorf("%s %s: %w", c.Object, c.Field(), err)
			}
			if c.Element && !v.Present {
				// The list was added by a BreakGlass into a map that was
				// absent (a webhook without namespaceSelector): remove the
				// map it left empty.
				if parent := c.Path[:len(c.Path)-1]; Get(mod, parent).Equal(ValueOf(map[string]any{})) {
					_ = Set(mod, parent, Absent)
				}
			}
			out.Writes = append(out.Writes, c)
		default:
			out.Done++
		}
	}
	out.Modified = mod
	return out, nil
}
