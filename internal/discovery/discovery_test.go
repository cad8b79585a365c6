package discovery

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

func ns(labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: labels, Annotations: annotations}}
}

func install(name string, p meshv1alpha1.Provider, rev string) meshv1alpha1.MeshInstall {
	mi := meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: p, Version: "1.0.0"}}
	if rev != "" {
		mi.Spec.Istio = &meshv1alpha1.IstioInstallSpec{Revision: rev}
	}
	return mi
}

func TestForNamespace(t *testing.T) {
	reg := providers.Registry()
	istio := install("istio", meshv1alpha1.ProviderIstio, "")
	istioStable := install("istio-stable", meshv1alpha1.ProviderIstio, "stable")
	istioCanary := install("istio-canary", meshv1alpha1.ProviderIstio, "canary")
	linkerd := install("linkerd", meshv1alpha1.ProviderLinkerd, "")
	cilium := install("cilium", meshv1alpha1.ProviderCilium, "")
	uninstalling := install("cilium-old", meshv1alpha1.ProviderCilium, "")
	uninstalling.DeletionTimestamp = &metav1.Time{}
	uninstalling.Spec.DeletionPolicy = meshv1alpha1.DeletionUninstall
	orphaning := install("cilium-orphan", meshv1alpha1.ProviderCilium, "")
	orphaning.DeletionTimestamp = &metav1.Time{}
	orphaning.Spec.DeletionPolicy = meshv1alpha1.DeletionOrphan
	istioTagged := install("istio-tagged", meshv1alpha1.ProviderIstio, "")
	istioTagged.Spec.Istio = &meshv1alpha1.IstioInstallSpec{DefaultTag: "prod"}
	istioTagged.Status.Revisions = []meshv1alpha1.RevisionSummary{{Name: "1-29-0", Version: "1.29.0", Tags: []string{"prod", "canary-tag"}}}

	for _, tc := range []struct {
		name         string
		ns           *corev1.Namespace
		installs     []meshv1alpha1.MeshInstall
		want         Result
		wantErr      string // substring; empty means success
		wantNoMesh   bool
		wantConflict bool
	}{
		{
			name: "istio-injection enabled", ns: ns(map[string]string{"istio-injection": "enabled"}, nil),
			installs: []meshv1alpha1.MeshInstall{istio},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileSidecar, Source: "label istio-injection=enabled"},
		},
		{
			name: "istio enrolled without any MeshInstall resolves to an unmanaged mesh",
			ns:   ns(map[string]string{"istio-injection": "enabled"}, nil),
			want: Result{Provider: meshv1alpha1.ProviderIstio, Profile: meshv1alpha1.ProfileSidecar, Source: "label istio-injection=enabled"},
		},
		{
			name:     "istio.io/rev picks the MeshInstall running that revision",
			ns:       ns(map[string]string{"istio.io/rev": "canary"}, nil),
			installs: []meshv1alpha1.MeshInstall{istioStable, istioCanary},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio-canary", Revision: "canary", Profile: meshv1alpha1.ProfileSidecar, Source: "label istio.io/rev=canary"},
		},
		{
			name:     "istio.io/rev naming no MeshInstall with two installs is ambiguous",
			ns:       ns(map[string]string{"istio.io/rev": "other"}, nil),
			installs: []meshv1alpha1.MeshInstall{istioStable, istioCanary}, wantConflict: true,
			wantErr: "MeshInstall istio-canary, MeshInstall istio-stable",
		},
		{
			name:     "istio-injection enabled with two Istio installs is ambiguous",
			ns:       ns(map[string]string{"istio-injection": "enabled"}, nil),
			installs: []meshv1alpha1.MeshInstall{istioStable, istioCanary}, wantConflict: true,
		},
		{
			name:     "ambient dataplane mode",
			ns:       ns(map[string]string{"istio.io/dataplane-mode": "ambient"}, nil),
			installs: []meshv1alpha1.MeshInstall{istio},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileAmbient, Source: "label istio.io/dataplane-mode=ambient"},
		},
		{
			name:     "ambient wins over istio-injection disabled (Istio's own precedence)",
			ns:       ns(map[string]string{"istio.io/dataplane-mode": "ambient", "istio-injection": "disabled"}, nil),
			installs: []meshv1alpha1.MeshInstall{istio},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileAmbient, Source: "label istio.io/dataplane-mode=ambient"},
		},
		{
			name:     "sidecar injection wins over ambient (pods with sidecars take precedence over ztunnel)",
			ns:       ns(map[string]string{"istio.io/dataplane-mode": "ambient", "istio-injection": "enabled"}, nil),
			installs: []meshv1alpha1.MeshInstall{istio},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileSidecar, Source: "label istio-injection=enabled"},
		},
		{
			name:     "istio-injection disabled overrides istio.io/rev",
			ns:       ns(map[string]string{"istio-injection": "disabled", "istio.io/rev": "stable"}, nil),
			installs: []meshv1alpha1.MeshInstall{istioStable}, wantNoMesh: true, wantErr: "opted out by label istio-injection=disabled",
		},
		{
			name: "linkerd annotation", ns: ns(nil, map[string]string{"linkerd.io/inject": "enabled"}),
			installs: []meshv1alpha1.MeshInstall{linkerd, cilium},
			want:     Result{Provider: meshv1alpha1.ProviderLinkerd, MeshInstall: "linkerd", Source: "annotation linkerd.io/inject=enabled"},
		},
		{
			name: "linkerd ingress mode counts", ns: ns(nil, map[string]string{"linkerd.io/inject": "ingress"}),
			want: Result{Provider: meshv1alpha1.ProviderLinkerd, Source: "annotation linkerd.io/inject=ingress"},
		},
		{
			name: "linkerd as a label is not Linkerd's API and does not enrol",
			ns:   ns(map[string]string{"linkerd.io/inject": "enabled"}, nil), wantNoMesh: true,
		},
		{
			name:     "istio and linkerd both claim the namespace",
			ns:       ns(map[string]string{"istio-injection": "enabled"}, map[string]string{"linkerd.io/inject": "enabled"}),
			installs: []meshv1alpha1.MeshInstall{istio, linkerd}, wantConflict: true,
			wantErr: "Istio (label istio-injection=enabled); Linkerd (annotation linkerd.io/inject=enabled)",
		},
		{
			name: "cilium serves unlabelled namespaces when installed", ns: ns(nil, nil),
			installs: []meshv1alpha1.MeshInstall{cilium, istio},
			want:     Result{Provider: meshv1alpha1.ProviderCilium, MeshInstall: "cilium", Source: "Cilium serves every namespace as the CNI"},
		},
		{
			name: "istio label wins over cilium as the CNI", ns: ns(map[string]string{"istio-injection": "enabled"}, nil),
			installs: []meshv1alpha1.MeshInstall{cilium, istio},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Profile: meshv1alpha1.ProfileSidecar, Source: "label istio-injection=enabled"},
		},
		{
			name: "cilium being uninstalled does not count", ns: ns(nil, nil),
			installs: []meshv1alpha1.MeshInstall{uninstalling}, wantNoMesh: true,
		},
		{
			name: "cilium deleted with deletionPolicy Orphan keeps serving", ns: ns(nil, nil),
			installs: []meshv1alpha1.MeshInstall{orphaning},
			want:     Result{Provider: meshv1alpha1.ProviderCilium, MeshInstall: "cilium-orphan", Source: "Cilium serves every namespace as the CNI"},
		},
		{
			name:     "a revision tag in status picks the MeshInstall",
			ns:       ns(map[string]string{"istio.io/rev": "canary-tag"}, nil),
			installs: []meshv1alpha1.MeshInstall{istioStable, istioTagged},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio-tagged", Revision: "canary-tag", Profile: meshv1alpha1.ProfileSidecar, Source: "label istio.io/rev=canary-tag"},
		},
		{
			name:     "istio-injection enabled picks the MeshInstall owning the default tag",
			ns:       ns(map[string]string{"istio-injection": "enabled"}, nil),
			installs: []meshv1alpha1.MeshInstall{istioStable, istioTagged},
			want:     Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio-stable", Profile: meshv1alpha1.ProfileSidecar, Source: "label istio-injection=enabled"},
		},
		{
			name:     "linkerd disabled namespace with cilium installed falls to cilium",
			ns:       ns(nil, map[string]string{"linkerd.io/inject": "disabled"}),
			installs: []meshv1alpha1.MeshInstall{cilium, linkerd},
			want:     Result{Provider: meshv1alpha1.ProviderCilium, MeshInstall: "cilium", Source: "Cilium serves every namespace as the CNI"},
		},
		{
			name: "nothing at all", ns: ns(nil, nil), installs: []meshv1alpha1.MeshInstall{istio, linkerd},
			wantNoMesh: true, wantErr: `no mesh serves namespace "shop": label it istio-injection=enabled`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ForNamespace(reg, tc.ns, tc.installs)
			if tc.wantNoMesh || tc.wantConflict || tc.wantErr != "" {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				var nm *NoMeshError
				var ce *ConflictError
				if tc.wantNoMesh && !errors.As(err, &nm) {
					t.Fatalf("want NoMeshError, got %T: %v", err, err)
				}
				if tc.wantConflict && !errors.As(err, &ce) {
					t.Fatalf("want ConflictError, got %T: %v", err, err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				if r := err.(interface{ StalledReason() string }).StalledReason(); r != meshv1alpha1.ProviderNotResolvedReason {
					t.Fatalf("reason = %q", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestForProvider(t *testing.T) {
	reg := providers.Registry()
	istio := install("istio", meshv1alpha1.ProviderIstio, "stable")
	n := ns(map[string]string{"istio.io/rev": "stable"}, map[string]string{"linkerd.io/inject": "enabled"})
	// An explicit provider skips the cross-mesh conflict but still reads
	// the namespace for the revision and the MeshInstall.
	got, err := ForProvider(reg, meshv1alpha1.ProviderIstio, n, []meshv1alpha1.MeshInstall{istio})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Provider: meshv1alpha1.ProviderIstio, MeshInstall: "istio", Revision: "stable", Profile: meshv1alpha1.ProfileSidecar, Source: "spec.provider"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ForProvider(reg, "Kuma", n, nil); err == nil || !strings.Contains(err.Error(), `provider "Kuma" is not registered`) {
		t.Fatalf("unknown provider: %v", err)
	}
}
