package helm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://user:pass@charts.example/x", "https://redacted@charts.example/x"},
		{`Get "https://admin:s3cr@t@charts.example/index.yaml": dial tcp`, `Get "https://redacted@charts.example/index.yaml": dial tcp`},
		{"oci://robot@registry.example/charts and http://a:b@c", "oci://redacted@registry.example/charts and http://redacted@c"},
		{"https://charts.example/x?u=a@b", "https://charts.example/x?u=a@b"},
		{"no url here: a@b", "no url here: a@b"},
		{"mailto-free https://charts.example/a@b/c", "mailto-free https://charts.example/a@b/c"},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactErrorKeepsTheOutcome(t *testing.T) {
	stalled := outcome.Stalled(meshv1alpha1.ChartUnavailableReason, "chart linkerd-control-plane not found in https://u:hunter2@charts.example")
	err := RedactError(stalled)
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "https://redacted@charts.example") {
		t.Fatalf("message %q", err)
	}
	if r := outcome.Reason(err, ""); r != meshv1alpha1.ChartUnavailableReason {
		t.Fatalf("reason %q, want ChartUnavailable", r)
	}
	tr := RedactError(outcome.Transient("X", fmt.Errorf("fetching https://u:hunter2@h/index.yaml: %w", ErrReleaseNotFound)))
	if r, _ := outcome.TransientReason(tr); r != "X" || !errors.Is(tr, ErrReleaseNotFound) || strings.Contains(tr.Error(), "hunter2") {
		t.Fatalf("transient %v (reason %q)", tr, r)
	}
	w := RedactError(outcome.Wait("Waiting", 0, "waiting for https://u:hunter2@h"))
	if ww, ok := outcome.AsWait(w); !ok || strings.Contains(ww.Message, "hunter2") {
		t.Fatalf("wait %v", w)
	}
	plain := errors.New("no credentials")
	if got := RedactError(plain); got != plain || RedactError(nil) != nil { //nolint:errorlint // identity: the same error value back
		t.Fatal("an error without userinfo must pass unchanged")
	}
}

// TestSourceForRefusesCredentialsInTheURL: a MeshInstall stored before the
// API refused userinfo is Stalled naming the field and the fix, and the
// password appears nowhere.
func TestSourceForRefusesCredentialsInTheURL(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{Chart: &meshv1alpha1.ChartSource{Repository: "https://admin:hunter2@charts.example/linkerd"}}}
	_, err := SourceFor(context.Background(), nil, mi, mesh.Chart{Name: "linkerd-control-plane"}, "meshplane-system")
	want := "spec.chart.repository https://redacted@charts.example/linkerd carries credentials (user:password@host): remove them and put them in a Secret in namespace meshplane-system (keys username and password) referenced by spec.chart.credentialsSecretRef"
	if err == nil || err.Error() != want || outcome.Reason(err, "") != meshv1alpha1.InvalidSpecReason {
		t.Fatalf("SourceFor = %v\nwant InvalidSpec %q", err, want)
	}
}
