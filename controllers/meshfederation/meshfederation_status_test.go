package meshfederation

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/trust"
)

// TestSetStatus: the summary, the federation's conditions and each
// member's, from a reconcile's result and error.
func TestSetStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	root, err := trust.GenerateRoot(trust.RootOptions{CommonName: "root"}, now)
	if err != nil {
		t.Fatal(err)
	}
	// A member with a client answered; status never calls it.
	var cl client.Client = unused{}
	ok := func(name string, wrote bool) *member {
		return &member{spec: meshv1alpha1.MemberCluster{Name: name}, client: cl, wrote: wrote, bundle: []string{root.Fingerprint()}}
	}
	failed := func(name string, err error) *member {
		m := &member{spec: meshv1alpha1.MemberCluster{Name: name}, client: cl}
		m.fail(err)
		return m
	}
	conflict := fmt.Errorf("cluster b: %w", &apply.ConflictError{Kind: "Secret", Namespace: "istio-system", Name: "cacerts"})
	for _, tc := range []struct {
		name    string
		mode    meshv1alpha1.FederationMode
		out     result
		err     error
		want    status.Summary
		cond    map[string]string // type -> "Status/Reason", "-" for absent
		members map[string]string // member -> Distributed "Status/Reason"
	}{
		{name: "distributed", out: result{members: []*member{ok("a", true), ok("b", false)}, root: root, after: time.Hour},
			want: status.Summary{Message: "trust is distributed to all 2 clusters", RequeueAfter: time.Hour},
			cond: map[string]string{meshv1alpha1.RootReadyCondition: "True/Succeeded", meshv1alpha1.DistributedCondition: "True/Succeeded",
				meshv1alpha1.RotatingCondition: "-"},
			members: map[string]string{"a": "True/Succeeded", "b": "True/Succeeded"}},
		{name: "bundle merge has no root", mode: meshv1alpha1.FederationBundleMerge, out: result{members: []*member{ok("a", false)}},
			want: status.Summary{Message: "trust is distributed to all 1 clusters"},
			cond: map[string]string{meshv1alpha1.RootReadyCondition: "-", meshv1alpha1.DistributedCondition: "True/Succeeded"}},
		{name: "rotating, waiting", out: result{members: []*member{ok("a", true)}, root: root, rotating: true, waitingFor: "a:app/web", after: time.Second,
			rotation: &meshv1alpha1.RotationStatus{Phase: meshv1alpha1.RotationWaitingForReload}, rotationKnown: true},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.WaitingReason,
				Message: "rotation phase WaitingForReload: waiting for a:app/web", RequeueAfter: time.Second},
			cond: map[string]string{meshv1alpha1.RotatingCondition: "True/Waiting", meshv1alpha1.DistributedCondition: "True/Succeeded"}},
		{name: "rotating", out: result{members: []*member{ok("a", true)}, root: root, rotating: true,
			rotation: &meshv1alpha1.RotationStatus{Phase: meshv1alpha1.RotationAddingRoot}, rotationKnown: true},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.ProgressingReason, Message: "rotation phase AddingRoot"},
			cond: map[string]string{meshv1alpha1.RotatingCondition: "True/Progressing"}},
		{name: "a member unreachable", out: result{members: []*member{ok("a", false), failed("b", errors.New("dial tcp: connection refused"))}, after: 15 * time.Second},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.ClusterUnreachableReason,
				Message: "1 of 2 clusters do not hold the current material: dial tcp: connection refused", RequeueAfter: 15 * time.Second},
			cond:    map[string]string{meshv1alpha1.DistributedCondition: "False/ClusterUnreachable"},
			members: map[string]string{"a": "True/Succeeded", "b": "False/ClusterUnreachable"}},
		{name: "a member conflicts", out: result{members: []*member{ok("a", false), failed("b", conflict)}, after: 15 * time.Second},
			want: status.Summary{State: status.Stalled, Reason: meshv1alpha1.ConflictReason,
				Message: "1 of 2 clusters do not hold the current material: " + conflict.Error(), RequeueAfter: 15 * time.Second},
			cond:    map[string]string{meshv1alpha1.DistributedCondition: "False/Conflict"},
			members: map[string]string{"b": "False/Conflict"}},
		{name: "a member's reference is missing", out: result{members: []*member{failed("b", outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "no kubeconfig"))}},
			want: status.Summary{State: status.Stalled, Reason: meshv1alpha1.ReferenceNotFoundReason,
				Message: "1 of 1 clusters do not hold the current material: no kubeconfig"},
			members: map[string]string{"b": "False/ReferenceNotFound"}},
		{name: "a bad root", out: result{}, err: outcome.Stalled(meshv1alpha1.InvalidCertificateReason, "root expired"),
			cond: map[string]string{meshv1alpha1.RootReadyCondition: "False/InvalidCertificate", meshv1alpha1.DistributedCondition: "-"}},
		{name: "a transient error leaves the conditions", out: result{root: root}, err: errors.New("etcd timeout"),
			cond: map[string]string{meshv1alpha1.RootReadyCondition: "-", meshv1alpha1.DistributedCondition: "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fed := &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "mesh", Generation: 2}, Spec: meshv1alpha1.MeshFederationSpec{Mode: tc.mode}}
			tc.out.now = now
			sum := setStatus(fed, tc.out, tc.err)
			if sum != tc.want {
				t.Fatalf("summary %+v, want %+v", sum, tc.want)
			}
			for typ, want := range tc.cond {
				c := status.Get(&fed.Status.CommonStatus, typ)
				got := "-"
				if c != nil {
					got = string(c.Status) + "/" + c.Reason
				}
				if got != want {
					t.Errorf("%s = %s, want %s", typ, got, want)
				}
			}
			for name, want := range tc.members {
				var cs *meshv1alpha1.MemberClusterStatus
				for i := range fed.Status.Clusters {
					if fed.Status.Clusters[i].Name == name {
						cs = &fed.Status.Clusters[i]
					}
				}
				if cs == nil {
					t.Fatalf("no status for member %s", name)
				}
				c := status.Get(&meshv1alpha1.CommonStatus{Conditions: cs.Conditions}, meshv1alpha1.DistributedCondition)
				if got := string(c.Status) + "/" + c.Reason; got != want || c.ObservedGeneration != 2 {
					t.Errorf("member %s Distributed = %s, want %s", name, got, want)
				}
				if strings.HasPrefix(want, "True") && (cs.LastSyncTime == nil || !cs.LastSyncTime.Time.Equal(now)) {
					t.Errorf("member %s lastSyncTime %v", name, cs.LastSyncTime)
				}
			}
			if tc.out.root != nil && (fed.Status.Root == nil || fed.Status.Root.Fingerprint != root.Fingerprint()) {
				t.Errorf("root %+v", fed.Status.Root)
			}
			if tc.out.rotationKnown && fed.Status.Rotation != tc.out.rotation {
				t.Errorf("rotation %+v", fed.Status.Rotation)
			}
			if len(tc.out.members) > 0 && tc.err == nil {
				ready := 0
				for _, m := range tc.out.members {
					if m.err == nil {
						ready++
					}
				}
				if want := fmt.Sprintf("%d/%d", ready, len(tc.out.members)); fed.Status.ReadyClusters != want {
					t.Errorf("readyClusters %s, want %s", fed.Status.ReadyClusters, want)
				}
			}
		})
	}
}

// TestLastSyncTimeMovesOnWrites: a member's lastSyncTime moves only when
// something was written to it, so a no-op reconcile patches nothing.
func TestLastSyncTimeMovesOnWrites(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fed := &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "mesh"}}
	m := func(wrote bool) []*member {
		return []*member{{spec: meshv1alpha1.MemberCluster{Name: "a"}, wrote: wrote}}
	}
	setStatus(fed, result{members: m(true), now: t0}, nil)
	setStatus(fed, result{members: m(false), now: t0.Add(time.Minute)}, nil)
	if got := fed.Status.Clusters[0].LastSyncTime.Time; !got.Equal(t0) {
		t.Fatalf("lastSyncTime %s after a reconcile that wrote nothing, want %s", got, t0)
	}
	setStatus(fed, result{members: m(true), now: t0.Add(2 * time.Minute)}, nil)
	if got := fed.Status.Clusters[0].LastSyncTime.Time; !got.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("lastSyncTime %s after a write", got)
	}
}

// unused is a client status functions hold but never call.
type unused struct{ client.Client }
