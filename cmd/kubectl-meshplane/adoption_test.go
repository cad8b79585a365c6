package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int32
		want        string
	}{
		{0, 10, "[..........]   0%"},
		{3, 10, "[###.......]  30%"},
		{10, 10, "[##########] 100%"},
		{12, 10, "[##########] 100%"},
		{-1, 10, "[..........]   0%"},
		{0, 0, "[..........]   -"},
	} {
		if got := progressBar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

// TestAdoptionStatus runs `kubectl meshplane adoption status` against an
// API server holding the sample MeshAdoption with a held wave.
func TestAdoptionStatus(t *testing.T) {
	p := newPlugin(t)
	if out := p.mustRun("adoption", "status"); !strings.Contains(out, "No MeshAdoption found") {
		t.Errorf("empty cluster: %q", out)
	}
	ma := sample(p, "meshplane_v1alpha1_meshadoption.yaml", &meshv1alpha1.MeshAdoption{})
	start := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	end := metav1.NewTime(start.Add(20 * time.Second))
	ma.Status = meshv1alpha1.MeshAdoptionStatus{Phase: meshv1alpha1.AdoptionHeld, Provider: meshv1alpha1.ProviderIstio, TotalNamespaces: 10, EnrolledNamespaces: 3,
		Waves: []meshv1alpha1.AdoptionWaveStatus{
			{Index: 1, Namespaces: []string{"a", "b", "c"}, Phase: meshv1alpha1.WaveEnrolled, StartTime: &start, CompletionTime: &end,
				WouldBeDenied: new(int64), PromotionTime: &end},
			{Index: 2, Namespaces: []string{"d", "e", "f"}, Phase: meshv1alpha1.WaveMovedBack, StartTime: &end, CompletionTime: &end, Message: "wave 2 failed its health gate"},
		}}
	setConditions(&ma.Status.Conditions, ma.Generation, metav1.ConditionFalse, meshv1alpha1.HealthGateFailedReason, "wave 2 [d e f] failed its health gate")
	if err := p.c.Status().Update(context.Background(), ma); err != nil {
		t.Fatal(err)
	}
	out := p.mustRun("adoption", "status", "onboard-shop")
	t.Logf("adoption status:\n%s", out)
	for _, want := range []string{
		"MeshAdoption onboard-shop: MeshInstall istio (Istio), phase Held",
		"[#########.....................]  30% 3/10 namespaces enrolled",
		"wave 1 Enrolled  20s       a, b, c (would-be denials: 0, promoted)",
		"wave 2 MovedBack 0s        d, e, f",
		"wave 2 failed its health gate",
		"Stalled=True HealthGateFailed: wave 2 [d e f] failed its health gate",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("adoption status lacks %q", want)
		}
	}
	var buf bytes.Buffer
	writeAdoption(&buf, &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
	if !strings.Contains(buf.String(), "phase -") {
		t.Errorf("fresh adoption: %q", buf.String())
	}
}
