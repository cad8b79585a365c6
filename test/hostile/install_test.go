package hostile

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

// The MeshInstall and MeshRevision cases. A MeshInstall is cluster-scoped
// and changes which mesh serves every namespace, so every case that stores
// one is Isolated (its own API server and manager); cases the API server
// refuses store nothing and share the cluster.

// ownClusters bounds how many of this file's cases run their own API
// server at once: started all together (the framework starts an Isolated
// case's server before the case runs, with no bound), they time out
// installing CRDs on this two-core machine.
var ownClusters = make(chan struct{}, 2)

// registerOwn registers a case that needs its own API server and manager
// (it stores a cluster-scoped MeshInstall, which would change which mesh
// serves the shared cluster's namespaces): the case runs as a shared case
// that starts its own API server once ownClusters has room.
func registerOwn(c Case) {
	run := c.Run
	c.Isolated = false
	c.Run = func(h *H) {
		h.Helper()
		select {
		case ownClusters <- struct{}{}:
		case <-h.Ctx.Done():
			return
		}
		defer func() { <-ownClusters }()
		s, err := cluster.StartServer(cluster.EnvtestOptions{})
		if err != nil {
			h.Fatalf("starting the case's API server: %v", err)
		}
		h.Cleanup(func() { _ = s.Stop() })
		run(&H{T: h.T, Ctx: h.Ctx, C: testenv.NewClient(h.T, s.Config), Cfg: s.Config})
	}
	Register(c)
}

// secret is the password the credential cases put in URLs; it must appear
// in no message.
const secret = "hunter2-Zq9"

// credentialMessage is the API server's refusal of userinfo in a
// repository URL.
const credentialMessage = `spec.chart: Invalid value: spec.chart.repository must not carry credentials (user:password@host): ` +
	`put the username and password in a Secret in the operator namespace (keys username and password) and reference it with spec.chart.credentialsSecretRef`

// meshVersion is a version each mesh's staged charts serve.
func meshVersion(m Mesh) (meshv1alpha1.Provider, string) {
	switch m {
	case Linkerd:
		return meshv1alpha1.ProviderLinkerd, "edge-26.1.1"
	case Cilium:
		return meshv1alpha1.ProviderCilium, "1.19.5"
	default:
		return meshv1alpha1.ProviderIstio, "1.28.1"
	}
}

// stageCharts stages m's charts at meshVersion into a fresh directory.
func stageCharts(h *H, m Mesh) string {
	dir := h.TempDir()
	switch m {
	case Linkerd:
		charts.StageLinkerd(h.T, dir, "2026.1.1")
	case Cilium:
		charts.StageCilium(h.T, dir, "1.19.5")
	default:
		charts.StageIstio(h.T, dir, "1.28.1")
	}
	return dir
}

// installOf is a MeshInstall of m into namespace ns from src.
func installOf(m Mesh, name, ns string, src *meshv1alpha1.ChartSource) *meshv1alpha1.MeshInstall {
	p, v := meshVersion(m)
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: p, Version: v, Namespace: ns, Chart: src}}
	if m == Cilium {
		// Without an API server address the chart reads kube-public/cluster-info.
		mi.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"k8sServiceHost":"127.0.0.1","k8sServicePort":6443}`)}
	}
	return mi
}

// installed waits until mi's releases are deployed (Installed=True); the
// control plane never becomes Available here (no kubelet).
func installed(h *H, mi *meshv1alpha1.MeshInstall) {
	h.Helper()
	h.Eventually("MeshInstall "+mi.Name+" Installed", func() error {
		got := &meshv1alpha1.MeshInstall{}
		if err := h.C.Get(h.Ctx, keyOf(mi), got); err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == meshv1alpha1.InstalledCondition && c.Status == metav1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", got.Status.Conditions)
	})
}

// foreignNamespace creates a namespace the way a platform team would have
// it before Meshplane: labels (one of them a Linkerd control-plane label
// with another value) and an annotation.
func foreignNamespace(h *H, name string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels:      map[string]string{"team": "payments", "linkerd.io/control-plane-ns": "elsewhere"},
		Annotations: map[string]string{"owner": "platform"}}}
	h.Create(ns)
	return ns
}

// deleteAndWait deletes mi and waits until it is gone (its finalizer
// released).
func deleteAndWait(h *H, mi *meshv1alpha1.MeshInstall) {
	h.Helper()
	h.Must(h.C.Delete(h.Ctx, mi))
	h.Eventually("MeshInstall "+mi.Name+" gone", func() error {
		if err := h.C.Get(h.Ctx, keyOf(mi), &meshv1alpha1.MeshInstall{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}

// noLeak asserts secret appears in no condition of mi and no Event.
func noLeak(h *H, mi *meshv1alpha1.MeshInstall) {
	h.Helper()
	got := &meshv1alpha1.MeshInstall{}
	h.Must(h.C.Get(h.Ctx, keyOf(mi), got))
	for _, c := range got.Status.Conditions {
		if strings.Contains(c.Message, secret) {
			h.Fatalf("condition %s leaks the password: %s", c.Type, c.Message)
		}
	}
	var evs corev1.EventList
	h.Must(h.C.List(h.Ctx, &evs))
	for _, e := range evs.Items {
		if strings.Contains(e.Message, secret) {
			h.Fatalf("Event %s leaks the password: %s", e.Name, e.Message)
		}
	}
}

// storeBeforeRule stores mi as if it had been created before the API
// refused userinfo in spec.chart.repository: the rule is lifted from the
// CRD, mi created, and the rule put back.
func storeBeforeRule(h *H, mi *meshv1alpha1.MeshInstall) {
	h.Helper()
	key := client.ObjectKey{Name: "meshinstalls.meshplane.io"}
	var crd apiextensionsv1.CustomResourceDefinition
	h.Must(h.C.Get(h.Ctx, key, &crd))
	orig := crd.DeepCopy()
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	chart := spec.Properties["chart"]
	var kept []apiextensionsv1.ValidationRule
	for _, r := range chart.XValidations {
		if !strings.Contains(r.Message, "credentials (user:password@host)") {
			kept = append(kept, r)
		}
	}
	chart.XValidations = kept
	spec.Properties["chart"] = chart
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = spec
	h.Must(h.C.Update(h.Ctx, &crd))
	h.Eventually("stored without the rule", func() error { return h.C.Create(h.Ctx, mi.DeepCopy()) })
	h.Must(h.C.Get(h.Ctx, key, &crd))
	crd.Spec = orig.Spec
	h.Must(h.C.Update(h.Ctx, &crd))
	probe := installOf(Istio, "probe", "", &meshv1alpha1.ChartSource{Repository: "https://u:" + secret + "@charts.example"})
	h.Eventually("the rule back", func() error {
		if err := h.C.Create(h.Ctx, probe.DeepCopy(), client.DryRunAll); !apierrors.IsInvalid(err) {
			return fmt.Errorf("dry-run create with credentials: %v", err)
		}
		return nil
	})
}

func init() {
	urls := []struct{ name, url string }{
		{"https user:password@", "https://admin:" + secret + "@charts.example/stable"},
		{"oci user:password@", "oci://robot:" + secret + "@registry.example/charts"},
		{"http user:password@ with a port", "http://admin:" + secret + "@10.0.0.1:8080/charts"},
		{"percent-encoded password", "https://admin:" + secret + "%40x@charts.example"},
	}
	for _, m := range Meshes {
		for _, u := range urls {
			Register(Case{Category: "secret", Kind: "MeshInstall", Mesh: m, Name: "create repository " + u.name,
				Run: func(h *H) {
					mi := installOf(m, "creds-"+string(m), "", &meshv1alpha1.ChartSource{Repository: u.url})
					err := h.C.Create(h.Ctx, mi)
					h.Rejected(err, credentialMessage)
					if strings.Contains(err.Error(), secret) {
						h.Fatalf("the refusal echoes the password: %v", err)
					}
					if err := h.C.Get(h.Ctx, keyOf(mi), &meshv1alpha1.MeshInstall{}); !apierrors.IsNotFound(err) {
						h.Fatalf("MeshInstall exists after its refusal: %v", err)
					}
				}})
		}
		registerInstallFailures(m)
	}
	registerRevisionCases()
}

// registerInstallFailures are MeshInstalls the API accepts and the
// controller refuses, each into an existing foreign namespace that must
// stay exactly as it was, before and after deletion.
func registerInstallFailures(m Mesh) {
	registerOwn(Case{Category: "foreign", Kind: "MeshInstall", Mesh: m, Name: "chart not found leaves the foreign namespace untouched", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			ns := foreignNamespace(h, "mesh-cp")
			snap, before := h.Snapshot(ns), h.Inventory(ns.Name)
			repo := chartrepo.Serve(h.T, h.TempDir())
			mi := installOf(m, "missing", ns.Name, &meshv1alpha1.ChartSource{Repository: repo.URL})
			h.Create(mi)
			first := map[Mesh]string{Istio: "base", Linkerd: "linkerd-crds", Cilium: "cilium"}[m]
			h.Stalled(mi, meshv1alpha1.ChartUnavailableReason, fmt.Sprintf("chart %s not found in repository %s", first, repo.URL))
			h.Unchanged(snap)
			h.Same(ns.Name, before)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
			h.Same(ns.Name, before)
		}})
	registerOwn(Case{Category: "secret", Kind: "MeshInstall", Mesh: m, Name: "credentials stored before the rule: refused, redacted, namespace untouched", Isolated: true,
		Run: func(h *H) {
			ns := foreignNamespace(h, "mesh-cp")
			snap, before := h.Snapshot(ns), h.Inventory(ns.Name)
			mi := installOf(m, "stored-creds", ns.Name, &meshv1alpha1.ChartSource{Repository: "https://admin:" + secret + "@charts.example/stable"})
			storeBeforeRule(h, mi)
			h.StartManager()
			h.Stalled(mi, meshv1alpha1.InvalidSpecReason, "spec.chart.repository https://redacted@charts.example/stable carries credentials (user:password@host): "+
				"remove them and put them in a Secret in namespace meshplane-system (keys username and password) referenced by spec.chart.credentialsSecretRef")
			noLeak(h, mi)
			h.Unchanged(snap)
			h.Same(ns.Name, before)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
		}})
	if m == Linkerd {
		registerLinkerdConflict()
		return
	}
	registerOwn(Case{Category: "deletion", Kind: "MeshInstall", Mesh: m, Name: "installed into a foreign namespace then deleted restores it exactly", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			ns := foreignNamespace(h, "mesh-cp")
			snap := h.Snapshot(ns)
			mi := installOf(m, "installed", ns.Name, &meshv1alpha1.ChartSource{Path: stageCharts(h, m)})
			mi.Spec.DeletionPolicy = meshv1alpha1.DeletionUninstall
			h.Create(mi)
			installed(h, mi)
			h.Unchanged(snap)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
		}})
	registerOwn(Case{Category: "refused-update", Kind: "MeshInstall", Mesh: m, Name: "update to a missing version keeps the install and the namespace", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			ns := foreignNamespace(h, "mesh-cp")
			mi := installOf(m, "update", ns.Name, &meshv1alpha1.ChartSource{Path: stageCharts(h, m)})
			h.Create(mi)
			installed(h, mi)
			h.Must(h.C.Get(h.Ctx, keyOf(mi), mi))
			releases, version := fmt.Sprint(mi.Status.Releases), mi.Status.InstalledVersion
			snap, before := h.Snapshot(nsOf(h, ns.Name)), h.Inventory(ns.Name)
			_, v := meshVersion(m)
			h.Must(h.Update(mi, func() { mi.Spec.Version = "1.99.0" }))
			h.Stalled(mi, meshv1alpha1.ChartUnavailableReason, "1.99.0", v)
			h.Must(h.C.Get(h.Ctx, keyOf(mi), mi))
			if got := fmt.Sprint(mi.Status.Releases); got != releases || mi.Status.InstalledVersion != version {
				h.Fatalf("after the refused update: releases %s (before %s), installed %q (before %q)", got, releases, mi.Status.InstalledVersion, version)
			}
			h.Unchanged(snap)
			h.Same(ns.Name, before)
		}})
}

// registerLinkerdConflict: Linkerd's CRDs exist without Helm's ownership
// (the isolated API server has them installed), so the render gate refuses
// the install as a Conflict before anything is written: the foreign
// namespace keeps its labels (Linkerd's control-plane labels are not set),
// before and after deletion. A chart path that does not exist touches
// nothing either.
func registerLinkerdConflict() {
	registerOwn(Case{Category: "deletion", Kind: "MeshInstall", Mesh: Linkerd, Name: "install refused by existing CRDs touches the foreign namespace neither before nor after deletion", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			ns := foreignNamespace(h, "mesh-cp")
			snap := h.Snapshot(ns)
			mi := installOf(Linkerd, "conflict", ns.Name, &meshv1alpha1.ChartSource{Path: stageCharts(h, Linkerd)})
			h.Create(mi)
			h.Stalled(mi, meshv1alpha1.ConflictReason, "release mesh-cp/linkerd-crds (chart linkerd-crds 2026.1.1) cannot be installed", "remove or adopt the existing objects")
			h.Unchanged(snap)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
		}})
	registerOwn(Case{Category: "foreign", Kind: "MeshInstall", Mesh: Linkerd, Name: "chart path that does not exist touches nothing", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			ns := foreignNamespace(h, "mesh-cp")
			snap, before := h.Snapshot(ns), h.Inventory(ns.Name)
			mi := installOf(Linkerd, "no-path", ns.Name, &meshv1alpha1.ChartSource{Path: "/nonexistent/charts"})
			h.Create(mi)
			h.Stalled(mi, meshv1alpha1.ChartUnavailableReason, "/nonexistent/charts")
			h.Unchanged(snap)
			h.Same(ns.Name, before)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
		}})
}

// registerRevisionCases are MeshRevisions whose MeshInstall is missing or
// not Istio: Stalled, nothing written (no istiod, no tag webhook).
func registerRevisionCases() {
	Register(Case{Category: "reference", Kind: "MeshRevision", Mesh: Istio, Name: "missing MeshInstall writes nothing, deletes cleanly",
		Run: func(h *H) {
			hooks := func() string {
				var l admissionregistrationv1.MutatingWebhookConfigurationList
				h.Must(h.C.List(h.Ctx, &l, client.MatchingLabels{"istio.io/tag": "hostile-missing"}))
				return fmt.Sprint(len(l.Items))
			}
			rv := &meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "hostile-missing-mi"},
				Spec: meshv1alpha1.MeshRevisionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "no-such-install"}, Version: "1.28.1",
					Tags: []string{"hostile-missing"}}}
			h.Create(rv)
			h.Stalled(rv, meshv1alpha1.ReferenceNotFoundReason,
				"spec.meshInstallRef names MeshInstall no-such-install, which does not exist; create it or fix the reference")
			if n := hooks(); n != "0" {
				h.Fatalf("%s tag webhooks written for a revision without a MeshInstall", n)
			}
			h.Must(h.C.Delete(h.Ctx, rv))
			h.Eventually("MeshRevision gone", func() error {
				if err := h.C.Get(h.Ctx, keyOf(rv), &meshv1alpha1.MeshRevision{}); !apierrors.IsNotFound(err) {
					return fmt.Errorf("still there: %v", err)
				}
				return nil
			})
		}})
	for _, m := range []Mesh{Linkerd, Cilium} {
		registerOwn(Case{Category: "spec", Kind: "MeshRevision", Mesh: m, Name: "revision of a non-Istio MeshInstall", Isolated: true,
			Run: func(h *H) {
				h.StartManager()
				repo := chartrepo.Serve(h.T, h.TempDir())
				mi := installOf(m, "not-istio", "", &meshv1alpha1.ChartSource{Repository: repo.URL})
				h.Create(mi)
				rv := &meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "rev-" + string(m)},
					Spec: meshv1alpha1.MeshRevisionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: mi.Name}, Version: "1.28.1"}}
				h.Create(rv)
				p, _ := meshVersion(m)
				h.Stalled(rv, meshv1alpha1.InvalidSpecReason, fmt.Sprintf("MeshInstall not-istio runs %s; revisions are an Istio feature", p))
				h.Must(h.C.Delete(h.Ctx, rv))
				h.Eventually("MeshRevision gone", func() error {
					if err := h.C.Get(h.Ctx, keyOf(rv), &meshv1alpha1.MeshRevision{}); !apierrors.IsNotFound(err) {
						return fmt.Errorf("still there: %v", err)
					}
					return nil
				})
			}})
	}
}
