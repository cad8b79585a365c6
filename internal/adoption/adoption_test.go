package adoption

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/upgrade"
)

var sidecar = mesh.Enrolment{
	Labels:      map[string]string{"istio-injection": "enabled"},
	ClearLabels: []string{"istio.io/rev", "istio.io/dataplane-mode"},
	Restart:     true,
}

var ambient = mesh.Enrolment{
	Labels:             map[string]string{"istio.io/dataplane-mode": "ambient"},
	ClearLabels:        []string{"istio-injection", "istio.io/rev"},
	RestartWhenCleared: true,
}

var linkerd = mesh.Enrolment{Annotations: map[string]string{"linkerd.io/inject": "enabled"}, Restart: true}

// TestEnrolRestoreExact: enrolling then moving back gives the namespace
// exactly its prior labels and annotations, whatever they were.
func TestEnrolRestoreExact(t *testing.T) {
	for name, tc := range map[string]struct {
		e           mesh.Enrolment
		labels, ann map[string]string
	}{
		"sidecar, nothing before":             {e: sidecar},
		"sidecar over injection disabled":     {e: sidecar, labels: map[string]string{"istio-injection": "disabled", "team": "a"}},
		"sidecar over a revision and ambient": {e: sidecar, labels: map[string]string{"istio.io/rev": "canary", "istio.io/dataplane-mode": "ambient"}},
		"ambient from sidecar":                {e: ambient, labels: map[string]string{"istio-injection": "enabled"}},
		"linkerd over disabled":               {e: linkerd, ann: map[string]string{"linkerd.io/inject": "disabled", "x": "y"}},
	} {
		t.Run(name, func(t *testing.T) {
			ns := Namespace{Name: "n", Labels: maps.Clone(tc.labels), Annotations: maps.Clone(tc.ann)}
			l, a, err := Enrol(tc.e, ns, "adopt")
			if err != nil {
				t.Fatal(err)
			}
			in := Namespace{Name: "n", Labels: l, Annotations: a}
			if !Enrolled(tc.e, in) {
				t.Fatalf("not enrolled after Enrol: %v %v", l, a)
			}
			if a[OwnerAnnotation] != "adopt" || a[PriorAnnotation] == "" {
				t.Fatalf("record missing: %v", a)
			}
			// Enrolling again changes nothing and keeps the first prior values.
			l2, a2, err := Enrol(tc.e, in, "adopt")
			if err != nil || !maps.Equal(l, l2) || !maps.Equal(a, a2) {
				t.Fatalf("second Enrol changed %v %v -> %v %v (%v)", l, a, l2, a2, err)
			}
			rl, ra, err := Restore(tc.e, in)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(rl, nonNil(tc.labels)) || !maps.Equal(ra, nonNil(tc.ann)) {
				t.Fatalf("restored %v %v, want %v %v", rl, ra, tc.labels, tc.ann)
			}
		})
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// TestRestoreLeavesLaterEdits: a label someone changed after enrolment is
// not overwritten by the move back.
func TestRestoreLeavesLaterEdits(t *testing.T) {
	ns := Namespace{Name: "n", Labels: map[string]string{"istio.io/rev": "old"}}
	l, a, _ := Enrol(sidecar, ns, "adopt")
	l["istio-injection"] = "disabled" // an operator's edit
	l["istio.io/rev"] = "other"       // re-added by someone
	rl, _, err := Restore(sidecar, Namespace{Name: "n", Labels: l, Annotations: a})
	if err != nil {
		t.Fatal(err)
	}
	if rl["istio-injection"] != "disabled" || rl["istio.io/rev"] != "other" {
		t.Fatalf("restore overwrote later edits: %v", rl)
	}
}

// TestBrokenRecord: a record that is not JSON is an error naming the
// annotation and the fix.
func TestBrokenRecord(t *testing.T) {
	ns := Namespace{Name: "n", Annotations: map[string]string{PriorAnnotation: "{"}}
	_, _, err := Restore(sidecar, ns)
	if err == nil || !strings.Contains(err.Error(), "annotation "+PriorAnnotation+" is not a JSON record") || !strings.Contains(err.Error(), "fix or remove it") {
		t.Fatalf("err = %v", err)
	}
}

func TestRestarts(t *testing.T) {
	fresh := Namespace{Name: "n"}
	fromSidecar := Namespace{Name: "n", Labels: map[string]string{"istio-injection": "enabled"}}
	l, a, _ := Enrol(ambient, fromSidecar, "x")
	moved := Namespace{Name: "n", Labels: l, Annotations: a}
	for _, tc := range []struct {
		name string
		e    mesh.Enrolment
		ns   Namespace
		want bool
	}{
		{"sidecar always", sidecar, fresh, true},
		{"ambient fresh", ambient, fresh, false},
		{"ambient from sidecar, before", ambient, fromSidecar, true},
		{"ambient from sidecar, after (recorded)", ambient, moved, true},
	} {
		if got := Restarts(tc.e, tc.ns); got != tc.want {
			t.Errorf("%s: Restarts = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNextWaveOrder(t *testing.T) {
	var nss []Namespace
	for _, n := range []string{"z", "a", "m", "b", "c"} {
		nss = append(nss, Namespace{Name: n})
	}
	nss[1].Labels = map[string]string{"istio-injection": "enabled"} // already in
	if got := NextWave(sidecar, nss, 2, nil); !slices.Equal(got, []string{"z", "m"}) {
		t.Fatalf("first wave %v, want list order without the enrolled namespace", got)
	}
	if got := NextWave(sidecar, nss, 0, []string{"z"}); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("wave of size 0 (1) excluding z: %v", got)
	}
	if got := len(Pending(sidecar, nss)); got != 4 {
		t.Fatalf("pending %d, want 4", got)
	}
}

func TestCheck(t *testing.T) {
	l, a, _ := Enrol(sidecar, Namespace{Name: "n"}, "x")
	stamp := Stamp("x", false, 7)
	ok := Namespace{Name: "n", Labels: l, Annotations: a, Workloads: []upgrade.Workload{{Kind: "Deployment", Name: "d", DataPlane: stamp, Ready: true}}}
	notRestarted := ok
	notRestarted.Workloads = []upgrade.Workload{{Kind: "Deployment", Name: "d", Ready: true}}
	notReady := ok
	notReady.Workloads = []upgrade.Workload{{Kind: "Deployment", Name: "d", DataPlane: stamp, Message: "1 of 2 updated"}}
	if g := Check(sidecar, []Namespace{ok}, stamp, true); !g.Passed {
		t.Fatalf("healthy wave failed: %v", g.Waiting)
	}
	if g := Check(sidecar, []Namespace{notRestarted}, stamp, true); g.Passed || g.Waiting[0] != "n/Deployment/d: not restarted yet" {
		t.Fatalf("unrestarted: %+v", g)
	}
	if g := Check(sidecar, []Namespace{notRestarted}, stamp, false); !g.Passed {
		t.Fatalf("restarts off: %+v", g)
	}
	if g := Check(sidecar, []Namespace{notReady}, stamp, true); g.Passed || g.Waiting[0] != "n/Deployment/d: 1 of 2 updated" {
		t.Fatalf("not ready: %+v", g)
	}
	if g := Check(sidecar, []Namespace{{Name: "q"}}, stamp, true); g.Passed || g.Waiting[0] != "q: not labelled yet" {
		t.Fatalf("unlabelled: %+v", g)
	}
	if Stamp("x", true, 7) == stamp {
		t.Fatal("the move back must restart again")
	}
}
