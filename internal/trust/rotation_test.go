package trust

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

var forward = []meshv1alpha1.RotationPhase{meshv1alpha1.RotationAddingRoot, meshv1alpha1.RotationWaitingForReload,
	meshv1alpha1.RotationSwitchingIntermediates, meshv1alpha1.RotationWaitingForWorkloads,
	meshv1alpha1.RotationRemovingOldRoot, meshv1alpha1.RotationCompleted}

// simCluster is one member as the rotation sees it. split members write
// their bundle (a ConfigMap) and their issuer (a Secret) separately, bundle
// first, as Linkerd's targets are written.
type simCluster struct {
	split  bool
	bundle []string
	issuer string
}

func (c *simCluster) safe() bool { return slices.Contains(c.bundle, c.issuer) }

func (c *simCluster) holds(d Desired) bool {
	return slices.Equal(c.bundle, d.Bundle) && c.issuer == d.Issuer
}

// TestRotationSafety drives the state machine through every rotation, with
// an abort injected at every phase, random unreachable members and random
// workload roll-outs, and checks after every single write that each
// member's bundle holds the root of its current intermediate, and that
// phases are never skipped.
func TestRotationSafety(t *testing.T) {
	abortAt := append([]meshv1alpha1.RotationPhase{""}, forward...)
	for _, ab := range abortAt {
		for seed := range uint64(20) {
			t.Run(fmt.Sprintf("abort-at-%s/seed-%d", ab, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 42))
				clusters := []*simCluster{{}, {split: true}, {}}
				r := Rotation{Phase: meshv1alpha1.RotationIdle, Old: "old"}
				for _, c := range clusters {
					d := r.Desired()
					c.bundle, c.issuer = d.Bundle, d.Issuer
				}
				r, err := r.Start("new", now)
				if err != nil {
					t.Fatal(err)
				}
				clock := now
				seen := []meshv1alpha1.RotationPhase{r.Phase}
				aborted := false
				for step := 0; step < 500 && r.Active(); step++ {
					clock = clock.Add(time.Second)
					if !aborted && ab != "" && r.Phase == ab {
						n, err := r.Abort(clock)
						refused := ab == meshv1alpha1.RotationRemovingOldRoot || ab == meshv1alpha1.RotationCompleted
						if refused != (err != nil) {
							t.Fatalf("abort in %s: err=%v", ab, err)
						}
						aborted = true
						if err == nil {
							r = n
							seen = append(seen, r.Phase)
						}
					}
					d := r.Desired()
					if !slices.Contains(d.Bundle, d.Issuer) {
						t.Fatalf("%s: desired bundle %v lacks issuer %s", r.Phase, d.Bundle, d.Issuer)
					}
					for i, c := range clusters {
						if rng.IntN(3) == 0 {
							continue // unreachable this round
						}
						if c.split {
							c.bundle = d.Bundle
							if !c.safe() {
								t.Fatalf("%s: member %d between bundle and issuer writes: bundle %v issuer %s", r.Phase, i, c.bundle, c.issuer)
							}
						} else {
							c.bundle = d.Bundle
						}
						c.issuer = d.Issuer
						if !c.safe() {
							t.Fatalf("%s: member %d bundle %v lacks the root %s of its intermediate", r.Phase, i, c.bundle, c.issuer)
						}
					}
					synced := true
					for _, c := range clusters {
						synced = synced && c.holds(d)
					}
					prev := r.Phase
					r, _, _ = r.Step(Observation{Now: clock, Synced: synced, WorkloadsRolled: rng.IntN(2) == 0, MinWait: 2 * time.Second})
					if r.Phase != prev {
						if !synced {
							t.Fatalf("left %s although a member did not hold its material", prev)
						}
						seen = append(seen, r.Phase)
					}
				}
				want := forward
				if ab != "" && ab != meshv1alpha1.RotationRemovingOldRoot && ab != meshv1alpha1.RotationCompleted {
					i := slices.Index(forward, ab)
					want = append(slices.Clone(forward[:i+1]), meshv1alpha1.RotationAborting, meshv1alpha1.RotationIdle)
				}
				if !slices.Equal(seen, want) {
					t.Fatalf("phases %v, want %v", seen, want)
				}
				final := r.Desired()
				for i, c := range clusters {
					if !c.safe() {
						t.Fatalf("member %d unsafe at the end", i)
					}
					_ = i
				}
				wantRoot := "new"
				if r.Phase == meshv1alpha1.RotationIdle {
					wantRoot = "old"
				}
				if r.Current() != wantRoot || !slices.Equal(final.Bundle, []string{wantRoot}) {
					t.Fatalf("ended in %s with current %s bundle %v", r.Phase, r.Current(), final.Bundle)
				}
			})
		}
	}
}

func TestRotationHolds(t *testing.T) {
	r, _ := Rotation{Phase: meshv1alpha1.RotationIdle, Old: "a"}.Start("b", now)
	if _, err := r.Start("c", now); err == nil {
		t.Fatal("second Start accepted while rotating")
	}
	if _, err := (Rotation{Old: "a"}).Start("a", now); err == nil {
		t.Fatal("Start to the current root accepted")
	}
	n, why, _ := r.Step(Observation{Now: now, Synced: false, NotSynced: "west: unreachable"})
	if n.Phase != meshv1alpha1.RotationAddingRoot || !strings.Contains(why, "west: unreachable") {
		t.Fatalf("did not hold: %s %q", n.Phase, why)
	}
	n, _, _ = r.Step(Observation{Now: now, Synced: true})
	if n.Phase != meshv1alpha1.RotationWaitingForReload {
		t.Fatalf("phase %s", n.Phase)
	}
	w, why, after := n.Step(Observation{Now: now.Add(time.Minute), Synced: true, WorkloadsRolled: true, MinWait: 5 * time.Minute})
	if w.Phase != meshv1alpha1.RotationWaitingForReload || after != 4*time.Minute || !strings.Contains(why, "minimum phase wait") {
		t.Fatalf("min wait: %s %q %s", w.Phase, why, after)
	}
	w, why, _ = n.Step(Observation{Now: now.Add(time.Hour), Synced: true, WorkloadsRolled: false, NotRolled: "istio-system/istiod-x", MinWait: 5 * time.Minute})
	if w.Phase != meshv1alpha1.RotationWaitingForReload || !strings.Contains(why, "istiod-x") {
		t.Fatalf("workload wait: %s %q", w.Phase, why)
	}
	w, _, _ = n.Step(Observation{Now: now.Add(time.Hour), Synced: true, WorkloadsRolled: true, MinWait: 5 * time.Minute})
	if w.Phase != meshv1alpha1.RotationSwitchingIntermediates || !w.PhaseStart.Equal(now.Add(time.Hour)) {
		t.Fatalf("did not advance: %s", w.Phase)
	}
	if _, err := (Rotation{Phase: meshv1alpha1.RotationIdle, Old: "a"}).Abort(now); err == nil {
		t.Fatal("abort accepted without a rotation")
	}
	_, err := Rotation{Phase: meshv1alpha1.RotationRemovingOldRoot, Old: "a", New: "b"}.Abort(now)
	if err == nil || !strings.Contains(err.Error(), "already being removed") {
		t.Fatalf("abort in RemovingOldRoot: %v", err)
	}
}

// TestLayoutGolden records which certificate lands in which key of which
// object, per mesh and rotation phase.
func TestLayoutGolden(t *testing.T) {
	oldRoot, newRoot := mustRoot(t, "old", ""), mustRoot(t, "new", "")
	roots := map[string]*CA{"old": oldRoot, "new": newRoot}
	inters := map[string]*CA{"old": mustIntermediate(t, oldRoot, "c"), "new": mustIntermediate(t, newRoot, "c")}
	names := map[string]string{}
	for k, r := range roots {
		names[r.Fingerprint()] = "root-" + k
	}
	for k, in := range inters {
		names[in.Fingerprint()] = "intermediate-signed-by-" + k
		names["key:"+string(in.KeyPEM)] = "key-of-intermediate-signed-by-" + k
	}
	describe := func(data []byte) []string {
		if n, ok := names["key:"+string(data)]; ok {
			return []string{n}
		}
		certs, err := ParseCerts(data)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range certs {
			out = append(out, names[Fingerprint(c)])
		}
		return out
	}
	reg := providers.Registry()
	got := map[string]map[string]map[string][]string{}
	phases := append([]meshv1alpha1.RotationPhase{meshv1alpha1.RotationIdle}, forward...)
	phases = append(phases, meshv1alpha1.RotationAborting)
	for _, p := range meshv1alpha1.Providers {
		w, err := reg.TrustWriter(p)
		if err != nil {
			t.Fatal(err)
		}
		tt := w.TrustTarget("")
		got[string(p)] = map[string]map[string][]string{}
		for _, ph := range phases {
			d := Rotation{Phase: ph, Old: "old", New: "new"}.Desired()
			b := &Bundle{}
			for _, k := range d.Bundle {
				b.Add(roots[k].Cert)
			}
			l := LayoutFor(tt, Material{Issuer: inters[d.Issuer], IssuerRoot: roots[d.Issuer].Cert, Bundle: b})
			keys := map[string][]string{}
			for k, v := range l.Secret {
				keys["Secret "+tt.Namespace+"/"+tt.IssuerSecret+" "+k] = describe(v)
			}
			for k, v := range l.ConfigMap {
				keys["ConfigMap "+tt.Namespace+"/"+tt.BundleConfigMap+" "+k] = describe([]byte(v))
			}
			got[string(p)][string(ph)] = keys
		}
	}
	out, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "layout.golden.yaml")
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != string(out) {
		t.Fatalf("layout differs from %s (rerun with -update if intended):\n%s", path, out)
	}
}
