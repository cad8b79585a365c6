package apply

import (
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Action is what a write did to one object.
type Action string

const (
	// Created: the object did not exist and was created.
	Created Action = "created"
	// Configured: the object existed and was changed.
	Configured Action = "configured"
	// Unchanged: the object already held the desired fields; nothing was
	// sent.
	Unchanged Action = "unchanged"
	// Pruned: an output no longer desired was deleted.
	Pruned Action = "pruned"
	// Released: the fields Meshplane had applied to a shared object were
	// given up (the object itself stays).
	Released Action = "released"
)

// Change is what was done to one object.
type Change struct {
	// Object is the object written (or left alone).
	Object meshv1alpha1.ObjectReference
	// Action says what was done.
	Action Action
}

// String renders "VirtualService shop/web configured".
func (c Change) String() string {
	name := c.Object.Name
	if c.Object.Namespace != "" {
		name = c.Object.Namespace + "/" + name
	}
	return c.Object.Kind + " " + name + " " + string(c.Action)
}

// ChangeSet lists what a write did, object by object.
type ChangeSet []Change

func (cs *ChangeSet) add(ref meshv1alpha1.ObjectReference, a Action) {
	*cs = append(*cs, Change{Object: ref, Action: a})
}

// Wrote reports whether any request was sent (anything but Unchanged).
func (cs ChangeSet) Wrote() bool {
	for _, c := range cs {
		if c.Action != Unchanged {
			return true
		}
	}
	return false
}

// Written returns the changes that sent a request, in order.
func (cs ChangeSet) Written() ChangeSet {
	var out ChangeSet
	for _, c := range cs {
		if c.Action != Unchanged {
			out = append(out, c)
		}
	}
	return out
}

// Count returns how many changes did a.
func (cs ChangeSet) Count(a Action) int {
	n := 0
	for _, c := range cs {
		if c.Action == a {
			n++
		}
	}
	return n
}

// String lists the writes, e.g. "VirtualService shop/web created,
// DestinationRule shop/web pruned"; empty when nothing was written.
func (cs ChangeSet) String() string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs.Written() {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

// Note summarises a Result for the one Event a writing reconcile emits.
func (r Result) Note() string { return r.Changes.String() }
