package hostile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/testenv"
)

// Concurrent spec updates during a RevisionBased upgrade: the batch
// recorded in status is what moves, whatever the spec says meanwhile.
func init() {
	registerOwn(Case{Category: "concurrent-update", Kind: "MeshInstall", Mesh: Istio, Name: "batchSize raised mid-batch keeps the recorded batch", Isolated: true,
		Run: func(h *H) {
			u := startUpgrade(h, 1)
			first := u.recorded(h)
			h.Must(h.Update(u.mi, func() { u.mi.Spec.Upgrade.Rollout.BatchSize = 3 }))
			u.completed(h)
			u.exactlyOnce(h)
			batches := u.batches(h)
			h.Logf("batches recorded: %v", batches)
			if len(batches) == 0 || !slices.Equal(batches[0], first) {
				h.Fatalf("batches %v: the first recorded batch %v changed membership", batches, first)
			}
			// The three namespaces left move in one batch of the new size.
			if len(batches) != 2 || len(batches[1]) != 3 {
				h.Fatalf("batches %v: want the recorded batch of 1, then one batch of the new batchSize 3", batches)
			}
		}})
	registerOwn(Case{Category: "concurrent-update", Kind: "MeshInstall", Mesh: Istio, Name: "paused mid-batch finishes the recorded batch and holds", Isolated: true,
		Run: func(h *H) {
			u := startUpgrade(h, 2)
			first := u.recorded(h)
			h.Must(h.Update(u.mi, func() { u.mi.Spec.Upgrade.Paused = true }))
			h.Eventually("upgrade paused", func() error {
				got := &meshv1alpha1.MeshInstall{}
				h.Must(h.C.Get(h.Ctx, keyOf(u.mi), got))
				if up := got.Status.Upgrade; up == nil || up.Phase != meshv1alpha1.UpgradePaused {
					return fmt.Errorf("upgrade %+v", got.Status.Upgrade)
				}
				return nil
			})
			h.Condition(u.mi, meshv1alpha1.ReadyCondition, metav1.ConditionFalse, meshv1alpha1.WaitingReason,
				"paused by spec.upgrade.paused after 2 of 4 namespaces; set it to false to resume")
			moved := func() error {
				for _, ns := range u.apps {
					gen, label := u.state(h, ns)
					want := int64(1)
					if slices.Contains(first, ns) {
						want = 2
					}
					if gen != want || (want == 2) != (label == "1-29-0") {
						return fmt.Errorf("%s: generation %d on revision %q, want generation %d (batch %v only)", ns, gen, label, want, first)
					}
				}
				return nil
			}
			h.Must(moved())
			h.Consistently(2*time.Second, "nothing moves while paused", moved)
			h.Must(h.Update(u.mi, func() { u.mi.Spec.Upgrade.Paused = false }))
			u.completed(h)
			u.exactlyOnce(h)
		}})
}

// upgrading is a RevisionBased Istio install upgrading 1.28.1 → 1.29.0 over
// four namespaces × one Deployment, a foreign namespace that is not part
// of the mesh, and a player of the deployment controller.
type upgrading struct {
	mi      *meshv1alpha1.MeshInstall
	apps    []string
	foreign *Snapshot
	mu      sync.Mutex
	seen    map[string][]string // batch start time -> membership
	order   []string
}

func startUpgrade(h *H, batchSize int32) *upgrading {
	h.Helper()
	h.StartManager()
	dir := h.TempDir()
	charts.StageIstio(h.T, dir, "1.28.1", "1.29.0")
	repo := chartrepo.Serve(h.T, dir)
	cp := testenv.Namespace(h.T, h.C, nil)
	u := &upgrading{seen: map[string][]string{}}
	play := []string{cp}
	var mu sync.Mutex
	go playRollouts(h.Ctx, h.C, &mu, &play)
	u.mi = &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "upgrading"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: cp,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL},
			Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased,
				RevisionRetention: &metav1.Duration{Duration: time.Second},
				Rollout: &meshv1alpha1.WorkloadRolloutPlan{BatchSize: batchSize, RestartWorkloads: ptr.To(true),
					HealthTimeout: &metav1.Duration{Duration: time.Minute}}}}}
	h.Create(u.mi)
	h.Ready(u.mi)
	foreign := testenv.Namespace(h.T, h.C, map[string]string{"team": "billing"})
	h.Must(h.C.Create(h.Ctx, deployment(foreign)))
	for range 4 {
		ns := testenv.Namespace(h.T, h.C, map[string]string{"istio.io/rev": "1-28-1"})
		h.Must(h.C.Create(h.Ctx, deployment(ns)))
		testenv.MarkAvailable(h.T, h.C, ns)
		u.apps = append(u.apps, ns)
	}
	testenv.MarkAvailable(h.T, h.C, foreign)
	d := &appsv1.Deployment{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: foreign, Name: "app"}, d))
	u.foreign = h.Snapshot(nsOf(h, foreign), d)
	mu.Lock()
	play = append(play, u.apps...)
	mu.Unlock()
	go u.follow(h)
	h.Must(h.Update(u.mi, func() { u.mi.Spec.Version = "1.29.0" }))
	return u
}

func deployment(ns string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "a"}}}}}}
}

// playRollouts plays the deployment controller in the namespaces of play:
// a Deployment whose template changed becomes Available a second later
// (long enough for a spec update to land while its batch is in flight).
func playRollouts(ctx context.Context, c client.Client, mu *sync.Mutex, play *[]string) {
	since := map[string]time.Time{}
	for ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		nss := slices.Clone(*play)
		mu.Unlock()
		for _, ns := range nss {
			var deps appsv1.DeploymentList
			if c.List(ctx, &deps, client.InNamespace(ns)) != nil {
				continue
			}
			for i := range deps.Items {
				d := &deps.Items[i]
				key := ns + "/" + d.Name
				if d.Status.ObservedGeneration == d.Generation {
					continue
				}
				if _, ok := since[key]; !ok {
					since[key] = time.Now()
				}
				if time.Since(since[key]) < time.Second {
					continue
				}
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{
						{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
						{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
				if c.Status().Update(ctx, d) == nil {
					delete(since, key)
				}
			}
		}
	}
}

// follow records every batch seen in status until the case ends.
func (u *upgrading) follow(h *H) {
	for h.Ctx.Err() == nil {
		got := &meshv1alpha1.MeshInstall{}
		if h.C.Get(h.Ctx, keyOf(u.mi), got) == nil && got.Status.Upgrade != nil && len(got.Status.Upgrade.CurrentBatch) > 0 && got.Status.Upgrade.BatchStartTime != nil {
			key := got.Status.Upgrade.BatchStartTime.String()
			b := slices.Clone(got.Status.Upgrade.CurrentBatch)
			u.mu.Lock()
			if prev, ok := u.seen[key]; !ok {
				u.seen[key] = b
				u.order = append(u.order, key)
			} else if !slices.Equal(prev, b) {
				u.seen[key+" changed to "+strings.Join(b, ",")] = b
			}
			u.mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recorded waits for the first batch recorded in status.
func (u *upgrading) recorded(h *H) []string {
	h.Helper()
	var first []string
	h.Eventually("first batch recorded", func() error {
		if b := u.batches(h); len(b) > 0 {
			first = b[0]
			return nil
		}
		return fmt.Errorf("no batch recorded yet")
	})
	return first
}

// batches is every recorded batch in order; a membership change of a
// recorded batch fails the case.
func (u *upgrading) batches(h *H) [][]string {
	h.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) != len(u.order) {
		h.Fatalf("a recorded batch changed membership: %v", u.seen)
	}
	var out [][]string
	for _, k := range u.order {
		out = append(out, u.seen[k])
	}
	return out
}

func (u *upgrading) completed(h *H) {
	h.Helper()
	h.Eventually("upgrade to 1.29.0 completed", func() error {
		got := &meshv1alpha1.MeshInstall{}
		h.Must(h.C.Get(h.Ctx, keyOf(u.mi), got))
		if up := got.Status.Upgrade; up == nil || up.MigratedNamespaces != 4 || len(up.CurrentBatch) != 0 ||
			(up.Phase != meshv1alpha1.UpgradeCompleted && up.Phase != meshv1alpha1.UpgradeCleaningUp) {
			return fmt.Errorf("upgrade %+v", got.Status.Upgrade)
		}
		return nil
	})
}

func (u *upgrading) state(h *H, ns string) (int64, string) {
	h.Helper()
	d := &appsv1.Deployment{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "app"}, d))
	n := &corev1.Namespace{}
	h.Must(h.C.Get(h.Ctx, client.ObjectKey{Name: ns}, n))
	if v := d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation]; d.Generation > 1 && !strings.HasPrefix(v, "1-29-0@") {
		h.Fatalf("%s: data-plane stamp %q, want 1-29-0@<attempt>", ns, v)
	}
	return d.Generation, n.Labels["istio.io/rev"]
}

// exactlyOnce: every app Deployment restarted once onto 1-29-0, its
// namespace relabelled, the foreign namespace and Deployment untouched.
func (u *upgrading) exactlyOnce(h *H) {
	h.Helper()
	time.Sleep(time.Second) // a stale reconcile would show itself
	for _, ns := range u.apps {
		if gen, label := u.state(h, ns); gen != 2 || label != "1-29-0" {
			h.Fatalf("%s: generation %d (restarted %d times) on revision %q, want restarted exactly once onto 1-29-0", ns, gen, gen-1, label)
		}
	}
	h.Unchanged(u.foreign)
}
