package apply

import (
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestChangeSet(t *testing.T) {
	vs := meshv1alpha1.ObjectReference{Kind: "VirtualService", Namespace: "shop", Name: "web"}
	dr := meshv1alpha1.ObjectReference{Kind: "DestinationRule", Namespace: "shop", Name: "web"}
	ns := meshv1alpha1.ObjectReference{Kind: "Namespace", Name: "shop"}
	var cs ChangeSet
	if cs.Wrote() || cs.String() != "" {
		t.Fatalf("empty change set wrote: %q", cs)
	}
	cs.add(vs, Unchanged)
	if cs.Wrote() || cs.String() != "" {
		t.Fatalf("unchanged counted as a write: %q", cs)
	}
	cs.add(dr, Created)
	cs.add(ns, Released)
	if !cs.Wrote() || cs.Count(Created) != 1 || cs.Count(Unchanged) != 1 || len(cs.Written()) != 2 {
		t.Fatalf("change set: %+v", cs)
	}
	if got, want := cs.String(), "DestinationRule shop/web created, Namespace shop released"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}
