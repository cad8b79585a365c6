package breakglass_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	bgctrl "github.com/meshplane/meshplane/controllers/breakglass"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/test/testenv"
)

// loseRecord deletes a record Secret for good: the delete leaves it
// terminating (its finalizer), then the finalizer is removed by force.
func loseRecord(t *testing.T, c client.Client, name string) *corev1.Secret {
	t.Helper()
	ctx := context.Background()
	key := client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: name}
	s := &corev1.Secret{}
	must(t, c.Get(ctx, key, s))
	if !controllerutil.ContainsFinalizer(s, bgctrl.RecordFinalizer) || s.Immutable == nil || !*s.Immutable {
		t.Fatalf("record Secret not protected: finalizers %v immutable %v", s.Finalizers, s.Immutable)
	}
	kept := s.DeepCopy()
	must(t, c.Delete(ctx, s))
	must(t, c.Get(ctx, key, s))
	if s.DeletionTimestamp.IsZero() {
		t.Fatal("the record Secret was deleted at once despite its finalizer")
	}
	before := s.DeepCopy()
	s.Finalizers = nil
	must(t, c.Patch(ctx, s, client.MergeFrom(before)))
	eventually(t, "record Secret gone", func() error {
		if err := c.Get(ctx, key, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	return kept
}

func lostMessage(bg, nss string) string {
	return "record Secret " + testenv.OperatorNamespace + "/breakglass-" + bg + " was deleted; the prior state of namespaces " + nss +
		" (injection labels, webhooks, relaxed policies) cannot be restored without it, and nothing is restored or re-recorded. " +
		"status.record.data holds a copy: recreate it with `kubectl create secret generic breakglass-" + bg + " -n " + testenv.OperatorNamespace +
		" --from-file=record.json.gz=<(kubectl get breakglass " + bg + " -o jsonpath='{.status.record.data}' | base64 -d)`, " +
		"or, to give up restoring, annotate this BreakGlass meshplane.io/accept-record-loss=true and delete it (Meshplane then removes only its NotIn requirement " +
		"from the webhooks and its meshplane.io/break-glass annotations; the namespaces' injection labels stay as they are now)"
}

func waitCond(t *testing.T, c client.Client, name, typ, want string) *meshv1alpha1.BreakGlass {
	t.Helper()
	bg := &meshv1alpha1.BreakGlass{}
	eventually(t, name+" "+typ+" "+want, func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, bg); err != nil {
			return err
		}
		if got := cond(bg, typ); got != want {
			return fmt.Errorf("%s %s (phase %s)", typ, got, bg.Status.Phase)
		}
		return nil
	})
	return bg
}

// TestBreakGlassRecordLoss: a record Secret is protected by a finalizer;
// deleted for good while engaged, the BreakGlass is Failed/RecordLost (not
// Engaged), its deletion stops with the same message (never Restored),
// and recreating the Secret from status.record restores exactly.
func TestBreakGlassRecordLoss(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	startManager(t, cfg, 0)
	overlapMesh(t, c, "loss", "rl-a", "rl-b")
	before := snapshot(t, c)

	must(t, c.Create(ctx, scoped("rl", "rl-a", "rl-b")))
	bg := waitPhase(t, c, "rl", meshv1alpha1.BreakGlassEngaged)
	engaged := snapshot(t, c)

	// Deleting the Secret only marks it: the finalizer keeps the record and
	// the BreakGlass stays Engaged.
	kept := loseRecord(t, c, "breakglass-rl")
	if bg.Status.Record == nil || len(bg.Status.Record.Data) == 0 || bg.Status.Record.SHA256 == "" {
		t.Fatalf("status.record %+v", bg.Status.Record)
	}
	want := "False/RecordLost: " + lostMessage("rl", "rl-a, rl-b")
	bg = waitCond(t, c, "rl", meshv1alpha1.EngagedCondition, want)
	if bg.Status.Phase != meshv1alpha1.BreakGlassFailed || !strings.HasPrefix(cond(bg, meshv1alpha1.StalledCondition), "True/RecordLost: ") {
		t.Fatalf("phase %s, Stalled %s", bg.Status.Phase, cond(bg, meshv1alpha1.StalledCondition))
	}
	if now := snapshot(t, c); now != engaged {
		t.Fatalf("a lost record changed the cluster:\n%s", diff(engaged, now))
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "breakglass-rl"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the detached state was re-recorded: %v", err)
	}

	// Deleting the BreakGlass does not restore from nothing.
	must(t, c.Delete(ctx, bg))
	bg = waitCond(t, c, "rl", meshv1alpha1.EngagedCondition, want)
	if bg.Status.Phase != meshv1alpha1.BreakGlassFailed || !slices.Contains(bg.Finalizers, bgctrl.Finalizer) {
		t.Fatalf("deletion with a lost record: phase %s finalizers %v", bg.Status.Phase, bg.Finalizers)
	}
	if now := snapshot(t, c); now != engaged {
		t.Fatalf("deleting with a lost record changed the cluster:\n%s", diff(engaged, now))
	}

	// Recreated from status.record.data (what the message says): restored.
	if string(bg.Status.Record.Data) != string(kept.Data[incident.RecordKey]) {
		t.Fatal("status.record.data is not the record")
	}
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "breakglass-rl"},
		Data: map[string][]byte{incident.RecordKey: bg.Status.Record.Data}}))
	waitGone(t, c, "rl")
	if after := snapshot(t, c); after != before {
		t.Fatalf("not restored exactly from the recreated record:\n%s", diff(before, after))
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "breakglass-rl"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("record Secret left behind: %v", err)
	}
}

// TestBreakGlassRecordLossAccepted: with meshplane.io/accept-record-loss
// the deletion finishes, removing only what Meshplane can identify as its
// own; a replaced record (another digest) is refused.
func TestBreakGlassRecordLossAccepted(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	startManager(t, cfg, 0)
	overlapMesh(t, c, "acc", "ra-a")
	before := snapshot(t, c)
	must(t, c.Create(ctx, scoped("ra", "ra-a")))
	bg := waitPhase(t, c, "ra", meshv1alpha1.BreakGlassEngaged)
	loseRecord(t, c, "breakglass-ra")
	waitCond(t, c, "ra", meshv1alpha1.EngagedCondition, "False/RecordLost: "+lostMessage("ra", "ra-a"))

	// A Secret with other content is refused, whatever it holds.
	bogus := []byte("not the record")
	sum := sha256.Sum256(bogus)
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "breakglass-ra"},
		Data: map[string][]byte{incident.RecordKey: bogus}}))
	bg = waitCond(t, c, "ra", meshv1alpha1.EngagedCondition, fmt.Sprintf(
		"False/RecordLost: record Secret %s/breakglass-ra was replaced: its record.json.gz has SHA-256 %s, status.record.sha256 is %s; nothing is restored from it. %s",
		testenv.OperatorNamespace, hex.EncodeToString(sum[:]), bg.Status.Record.SHA256,
		lostMessage("ra", "ra-a")[strings.Index(lostMessage("ra", "ra-a"), "status.record.data holds"):]))
	must(t, c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "breakglass-ra"}}))

	// The loss accepted: the deletion finishes; the webhooks and the
	// coverage annotation are back, the injection label stays removed.
	before2 := bg.DeepCopy()
	bg.Annotations = map[string]string{bgctrl.AcceptRecordLossAnnotation: "true"}
	must(t, c.Patch(ctx, bg, client.MergeFrom(before2)))
	must(t, c.Delete(ctx, bg))
	waitGone(t, c, "ra")
	if got := notIns(t, c, "acc"); !mapsEqual(got, wantNotIns()) {
		t.Errorf("webhooks keep a NotIn: %v", got)
	}
	ns := &corev1.Namespace{}
	must(t, c.Get(ctx, client.ObjectKey{Name: "ra-a"}, ns))
	if _, ok := ns.Annotations[incident.NamespaceAnnotation]; ok {
		t.Errorf("coverage annotation left: %v", ns.Annotations)
	}
	// Put the label back by hand (what the message says is lost): the
	// cluster is then exactly as before.
	ns.Labels["istio-injection"] = "enabled"
	must(t, c.Update(ctx, ns))
	if after := snapshot(t, c); after != before {
		t.Fatalf("more than the injection label differs:\n%s", diff(before, after))
	}
}

// TestBreakGlassRecordLossAcrossRestart: the record is lost while no
// operator runs; the next one reports it and never records the detached
// state as the original, whether it learns of the record from
// status.record or, for a BreakGlass engaged before status.record existed,
// from the coverage annotations on the namespaces.
func TestBreakGlassRecordLossAcrossRestart(t *testing.T) {
	cfg := env.Cfg(t)
	ctx := context.Background()
	c := testenv.NewClient(t, cfg)
	overlapMesh(t, c, "rst", "rs-a", "rs-b")
	before := snapshot(t, c)
	for _, withCopy := range []bool{true, false} {
		t.Run(fmt.Sprintf("status.record kept %v", withCopy), func(t *testing.T) {
			var engaged string
			t.Run("engage, then the operator stops", func(t *testing.T) {
				startManager(t, cfg, 0)
				must(t, c.Create(ctx, scoped("rs", "rs-a", "rs-b")))
				waitPhase(t, c, "rs", meshv1alpha1.BreakGlassEngaged)
				engaged = snapshot(t, c)
			})
			kept := loseRecord(t, c, "breakglass-rs")
			bg := &meshv1alpha1.BreakGlass{}
			must(t, c.Get(ctx, client.ObjectKey{Name: "rs"}, bg))
			want := "False/RecordLost: " + lostMessage("rs", "rs-a, rs-b")
			if !withCopy {
				orig := bg.DeepCopy()
				bg.Status.Record = nil
				must(t, c.Status().Patch(ctx, bg, client.MergeFrom(orig)))
				want = "False/RecordLost: record Secret " + testenv.OperatorNamespace + "/breakglass-rs was deleted; the prior state of namespaces rs-a, rs-b " +
					"(injection labels, webhooks, relaxed policies) cannot be restored without it, and nothing is restored or re-recorded. " +
					"Recreate Secret " + testenv.OperatorNamespace + "/breakglass-rs (key record.json.gz, SHA-256 unknown) from a backup, or, to give up restoring, " +
					"annotate this BreakGlass meshplane.io/accept-record-loss=true and delete it (Meshplane then removes only its NotIn requirement from the webhooks " +
					"and its meshplane.io/break-glass annotations; the namespaces' injection labels stay as they are now)"
			}
			startManager(t, cfg, 0)
			// Wake it (a restarted operator reconciles every BreakGlass).
			bg = waitCond(t, c, "rs", meshv1alpha1.EngagedCondition, want)
			if bg.Status.Phase != meshv1alpha1.BreakGlassFailed {
				t.Errorf("phase %s", bg.Status.Phase)
			}
			if err := c.Get(ctx, client.ObjectKey{Namespace: testenv.OperatorNamespace, Name: "breakglass-rs"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				t.Fatalf("the detached state was re-recorded after the restart: %v", err)
			}
			if now := snapshot(t, c); now != engaged {
				t.Fatalf("changed after the restart:\n%s", diff(engaged, now))
			}
			must(t, c.Delete(ctx, bg))
			must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.OperatorNamespace, Name: "breakglass-rs"},
				Data: map[string][]byte{incident.RecordKey: kept.Data[incident.RecordKey]}}))
			waitGone(t, c, "rs")
			if after := snapshot(t, c); after != before {
				t.Fatalf("not restored exactly:\n%s", diff(before, after))
			}
		})
	}
}
