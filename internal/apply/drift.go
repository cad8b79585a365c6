package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// Drift fight tuning: DriftFightRepairs repairs of one output within
// DriftWindow make a fight; from then on each repair waits
// DriftBackoff, doubled per further repair, at most DriftMaxBackoff.
var (
	DriftWindow       = 10 * time.Minute
	DriftFightRepairs = 3
	DriftBackoff      = 10 * time.Second
	DriftMaxBackoff   = 10 * time.Minute
)

// Drift is an output another writer changed although its desired state did
// not: Meshplane repairs it.
type Drift struct {
	// Object is the output.
	Object meshv1alpha1.ObjectReference
	// Managers are the other field managers that last wrote fields
	// Meshplane applies, most recent first; Fields those fields.
	Managers, Fields []string
	// Repairs counts the repairs within DriftWindow.
	Repairs int
	// Until is when the next repair may be sent (zero: now).
	Until time.Time
}

// Fighting reports whether the drift is repeated enough to be a fight.
func (d Drift) Fighting() bool { return d.Repairs >= DriftFightRepairs }

// String renders "VirtualService shop/web: field spec.http rewritten by
// field manager argocd (4 repairs in 10m0s)".
func (d Drift) String() string {
	who := "another writer"
	if len(d.Managers) > 0 {
		who = "field manager " + strings.Join(d.Managers, ", ")
	}
	what := "its fields"
	if len(d.Fields) > 0 {
		what = "field " + strings.Join(d.Fields, ", ")
	}
	return fmt.Sprintf("%s %s/%s: %s rewritten by %s (%d repairs in %s)",
		d.Object.Kind, d.Object.Namespace, d.Object.Name, what, who, d.Repairs, DriftWindow)
}

// driftLog remembers the repairs of each output of each owner.
type driftLog struct {
	mu sync.Mutex
	m  map[string]*driftEntry
}

type driftEntry struct {
	times []time.Time
	last  Drift
	until time.Time
}

func driftKey(owner Owner, ref meshv1alpha1.ObjectReference) string {
	return owner.value() + "|" + ref.APIVersion + "/" + ref.Kind + "/" + ref.Namespace + "/" + ref.Name
}

func (a *Applier) log() *driftLog {
	a.once.Do(func() { a.drift = &driftLog{m: map[string]*driftEntry{}} })
	return a.drift
}

// isDrift reports whether live differs from u although Meshplane's last
// apply of it had the same desired state (the hash annotation matches).
func isDrift(u *unstructured.Unstructured, live map[string]any) bool {
	lu := &unstructured.Unstructured{Object: live}
	h := u.GetAnnotations()[HashAnnotation]
	return h != "" && lu.GetAnnotations()[HashAnnotation] == h
}

// checkDrift reads who drifted each drifted output (managedFields, one
// uncached read per drifted output; the cache strips them) and refuses to
// repair an output still in its back-off (outcome.Wait, reason
// DriftFight). Nothing is written then.
func (p *Plan) checkDrift(ctx context.Context) error {
	if len(p.drifted) == 0 {
		return nil
	}
	now := time.Now()
	lg := p.a.log()
	for i := range p.drifted {
		d := &p.drifted[i]
		lg.mu.Lock()
		e := lg.m[driftKey(p.owner, d.Object)]
		lg.mu.Unlock()
		if e != nil && now.Before(e.until) {
			last := e.last
			return outcome.Wait(meshv1alpha1.DriftFightReason, time.Until(e.until),
				"drift fight: %s; Meshplane owns these fields and repairs them, backing off until %s — stop the other writer or remove the fields from its configuration",
				last, e.until.UTC().Format(time.RFC3339))
		}
		d.Managers, d.Fields = p.a.driftedBy(ctx, p.writes, d.Object)
	}
	return nil
}

// repaired records a repair of each drifted output and, for the ones in a
// fight, their next back-off.
func (a *Applier) repaired(owner Owner, drifted []Drift) {
	if len(drifted) == 0 {
		return
	}
	now := time.Now()
	lg := a.log()
	lg.mu.Lock()
	defer lg.mu.Unlock()
	for _, d := range drifted {
		k := driftKey(owner, d.Object)
		e := lg.m[k]
		if e == nil {
			e = &driftEntry{}
			lg.m[k] = e
		}
		e.times = append(slices.DeleteFunc(e.times, func(t time.Time) bool { return now.Sub(t) > DriftWindow }), now)
		d.Repairs = len(e.times)
		if d.Fighting() {
			backoff := DriftBackoff << min(d.Repairs-DriftFightRepairs, 16)
			e.until = now.Add(min(backoff, DriftMaxBackoff))
			d.Until = e.until
		}
		e.last = d
	}
}

// fights returns the outputs among refs in a drift fight: repaired
// DriftFightRepairs times within DriftWindow. A fight is reported for
// DriftWindow after its last repair, also by reconciles that write nothing.
func (a *Applier) fights(owner Owner, refs []meshv1alpha1.ObjectReference) []Drift {
	lg := a.log()
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if len(lg.m) == 0 {
		return nil
	}
	now := time.Now()
	var out []Drift
	for _, ref := range refs {
		k := driftKey(owner, ref)
		e := lg.m[k]
		if e == nil {
			continue
		}
		e.times = slices.DeleteFunc(e.times, func(t time.Time) bool { return now.Sub(t) > DriftWindow })
		if len(e.times) == 0 {
			delete(lg.m, k)
			continue
		}
		if e.last.Fighting() {
			out = append(out, e.last)
		}
	}
	return out
}

// driftedBy reads the output ref uncached and returns the field managers
// other than meshplane that own fields Meshplane applies, most recent
// first, and those fields.
func (a *Applier) driftedBy(ctx context.Context, writes []*unstructured.Unstructured, ref meshv1alpha1.ObjectReference) (managers, fields []string) {
	var want *unstructured.Unstructured
	for _, u := range writes {
		if refOf(u) == ref {
			want = u
		}
	}
	r := a.APIReader
	if r == nil || want == nil {
		return nil, nil
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(want.GroupVersionKind())
	if err := r.Get(ctx, clientKey(ref), live); err != nil {
		return nil, nil
	}
	ours := leafPaths(want.Object, "")
	entries := live.GetManagedFields()
	slices.SortStableFunc(entries, func(x, y metav1.ManagedFieldsEntry) int {
		return timeOf(y).Compare(timeOf(x))
	})
	for _, e := range entries {
		if e.Manager == ownership.FieldManager || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if json.Unmarshal(e.FieldsV1.GetRawBytes(), &set) != nil {
			continue
		}
		hit := false
		for _, f := range fieldPaths(set, "") {
			if f == "metadata" || strings.HasPrefix(f, "metadata.") || strings.HasPrefix(f, "status") {
				continue
			}
			if slices.ContainsFunc(ours, func(o string) bool { return o == f || strings.HasPrefix(o, f+".") || strings.HasPrefix(f, o+".") }) {
				hit = true
				if !slices.Contains(fields, f) && len(fields) < 5 {
					fields = append(fields, f)
				}
			}
		}
		if hit && !slices.Contains(managers, e.Manager) {
			managers = append(managers, e.Manager)
		}
	}
	return managers, fields
}

func timeOf(e metav1.ManagedFieldsEntry) time.Time {
	if e.Time == nil {
		return time.Time{}
	}
	return e.Time.Time
}

// leafPaths lists the dotted paths of the leaves of obj; a list is a leaf.
func leafPaths(v any, prefix string) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		if prefix == "" {
			return nil
		}
		return []string{prefix}
	}
	var out []string
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leafPaths(sub, p)...)
	}
	return out
}

// fieldPaths lists the dotted paths a FieldsV1 set owns, down to its first
// list (keys "k:", "v:" and "i:" stop the walk: the list is the field).
func fieldPaths(set map[string]any, prefix string) []string {
	var out []string
	for k, sub := range set {
		name, ok := strings.CutPrefix(k, "f:")
		if !ok {
			if prefix != "" && !slices.Contains(out, prefix) {
				out = append(out, prefix)
			}
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		m, _ := sub.(map[string]any)
		if len(m) == 0 {
			out = append(out, p)
			continue
		}
		out = append(out, fieldPaths(m, p)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func clientKey(ref meshv1alpha1.ObjectReference) client.ObjectKey {
	return client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
}
