package upgrade

import (
	"reflect"
	"testing"
)

func ns(name, rev string, wl ...Workload) Namespace {
	l := map[string]string{}
	if rev != "" {
		l["istio.io/rev"] = rev
	}
	return Namespace{Name: name, Labels: l, Workloads: wl}
}

func wl(name, dp string, ready bool) Workload {
	return Workload{Kind: "Deployment", Name: name, DataPlane: dp, Ready: ready, Message: "0 of 1 replicas available"}
}

func TestNextBatch(t *testing.T) {
	tgt := Target{FromRevision: "1-28-1", ToRevision: "1-29-0", DataPlane: "1-29-0", Restart: true}
	nss := []Namespace{
		ns("c", "1-28-1", wl("a", "", true)),
		ns("a", "1-28-1", wl("a", "", true)),
		ns("done", "1-29-0", wl("a", "1-29-0", true)),
		ns("relabelled-not-restarted", "1-29-0", wl("a", "1-28-1", true)),
		ns("b", "1-28-1"),
		ns("tag-follower", "default", wl("a", "", true)),
	}
	cases := []struct {
		size int
		want []string
	}{
		{1, []string{"a"}},
		{3, []string{"a", "b", "c"}},
		{0, []string{"a"}},
		{100, []string{"a", "b", "c", "relabelled-not-restarted", "tag-follower"}},
	}
	for _, c := range cases {
		if got := NextBatch(tgt, nss, c.size); !reflect.DeepEqual(got, c.want) {
			t.Errorf("NextBatch(size %d) = %v, want %v", c.size, got, c.want)
		}
	}
	noRestart := tgt
	noRestart.Restart = false
	if got := NextBatch(noRestart, nss, 100); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("without restarts only relabels are pending, got %v", got)
	}
	if !tgt.Relabel(nss[0]) || tgt.Relabel(nss[5]) {
		t.Error("Relabel: explicit namespaces are relabelled, tag followers are not")
	}
	inPlace := Target{DataPlane: "edge-26.2.1", Restart: true}
	if got := NextBatch(inPlace, []Namespace{ns("x", "", wl("a", "edge-26.2.1", true)), ns("y", "", wl("a", "edge-26.1.1", true))}, 5); !reflect.DeepEqual(got, []string{"y"}) {
		t.Errorf("in place: got %v", got)
	}
}

func TestCheckBatch(t *testing.T) {
	tgt := Target{DataPlane: "1-29-0", Restart: true}
	cases := []struct {
		name    string
		batch   []Namespace
		passed  bool
		waiting []string
	}{
		{"all ready", []Namespace{ns("a", "", wl("x", "1-29-0", true), wl("y", "1-29-0", true))}, true, nil},
		{"empty namespace passes", []Namespace{ns("a", "")}, true, nil},
		{"not restarted", []Namespace{ns("a", "", wl("x", "", true))}, false, []string{"a/Deployment/x: not restarted yet"}},
		{"not ready", []Namespace{ns("b", "", wl("y", "1-29-0", false)), ns("a", "", wl("x", "1-29-0", true))}, false,
			[]string{"b/Deployment/y: 0 of 1 replicas available"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := CheckBatch(tgt, c.batch)
			if g.Passed != c.passed || !reflect.DeepEqual(g.Waiting, c.waiting) {
				t.Fatalf("CheckBatch = %+v, want passed=%v waiting=%v", g, c.passed, c.waiting)
			}
		})
	}
}

func TestRevisionUsage(t *testing.T) {
	nsl := map[string]map[string]string{
		"explicit":    {"istio.io/rev": "1-28-1"},
		"by-tag":      {"istio.io/rev": "canary"},
		"by-default":  {"istio-injection": "enabled"},
		"default-rev": {"istio.io/rev": "default"},
		"disabled":    {"istio-injection": "disabled", "istio.io/rev": "1-28-1"},
		"other":       {"istio.io/rev": "1-29-0"},
		"plain":       {},
	}
	pods := []map[string]string{{"istio.io/rev": "1-28-1"}, {"istio.io/rev": "1-29-0"}, {"istio.io/rev": "1-28-1"}, {}}
	cases := []struct {
		name string
		rev  string
		tags map[string]string
		want Usage
	}{
		{"default tag here", "1-28-1", map[string]string{"default": "1-28-1", "canary": "1-28-1"},
			Usage{Namespaces: []string{"by-default", "by-tag", "default-rev", "explicit"}, Tags: []string{"canary", "default"}, Pods: 2}},
		{"default tag elsewhere", "1-28-1", map[string]string{"default": "1-29-0"},
			Usage{Namespaces: []string{"explicit"}, Pods: 2}},
		{"unused", "1-30-0", map[string]string{"default": "1-29-0"}, Usage{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := RevisionUsage(c.rev, c.tags, nsl, pods)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("RevisionUsage = %+v, want %+v", got, c.want)
			}
			if got.InUse() != (c.name != "unused") {
				t.Fatalf("InUse = %v", got.InUse())
			}
		})
	}
}

func TestPodRevisions(t *testing.T) {
	tgt := Target{FromRevision: "1-29-0", ToRevision: "1-30-0", PodRevision: "1-30-0", DataPlane: "1-30-0@1", Restart: true}
	follower := Namespace{Name: "f", Labels: map[string]string{"istio-injection": "enabled"}, Workloads: []Workload{wl("a", "1-29-0@0", true)},
		PodRevisions: map[string]int{"1-30-0": 1}}
	if !tgt.Migrated(follower) {
		t.Error("a tag follower whose pods run the target is migrated, whatever its template says")
	}
	behind := follower
	behind.PodRevisions = map[string]int{"1-30-0": 1, "1-29-0": 1}
	if tgt.Migrated(behind) {
		t.Error("a namespace with a pod on the old revision is not migrated")
	}
	g := CheckBatch(tgt, []Namespace{{Name: "x", Workloads: []Workload{wl("a", "1-30-0@1", true)}, PodRevisions: map[string]int{"1-29-0": 1}}})
	if g.Passed {
		t.Error("a batch whose pods still run the old revision does not pass")
	}
}
