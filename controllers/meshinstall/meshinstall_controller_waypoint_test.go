package meshinstall_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/internal/controlplane"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

const useWaypoint = "istio.io/use-waypoint"

// TestWaypoints: spec.istio.waypoints deploys a waypoint Gateway per
// ambient namespace and labels the namespace, recording the label's prior
// value; status reports each (unprogrammed on envtest, where no istiod
// programs it, without holding Ready); a non-ambient namespace is refused
// naming the field; removing an entry and deleting the MeshInstall delete
// the Gateway and restore the label exactly.
func TestWaypoints(t *testing.T) {
	cfg := env.Cfg(t)
	testenv.Must(t, cluster.InstallCRDs(cfg, cluster.CRDOptions{SkipMeshplaneCRDs: true, ThirdParty: []cluster.CRDSet{cluster.GatewayAPI}}))
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	m := startManager(t, cfg)
	c := m.Client

	theirs := testenv.AmbientNamespace(t, c, map[string]string{useWaypoint: "theirs"})
	bare := testenv.AmbientNamespace(t, c, nil)
	sidecar := testenv.Namespace(t, c, nil)
	cp := testenv.Namespace(t, c, nil)

	t.Run("waypoints need profile Ambient", func(t *testing.T) {
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio-wp-sidecar"},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
				Istio: &meshv1alpha1.IstioInstallSpec{Waypoints: []meshv1alpha1.IstioWaypoint{{Namespace: theirs}}}}}
		err := c.Create(ctx, mi)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.istio.waypoints needs spec.profile Ambient") {
			t.Fatalf("create: %v", err)
		}
	})

	mi := &meshv1alpha1.MeshInstall{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-wp"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Namespace: cp,
			Profile: meshv1alpha1.ProfileAmbient, DeletionPolicy: meshv1alpha1.DeletionUninstall,
			Chart: &meshv1alpha1.ChartSource{Repository: repo.URL},
			Istio: &meshv1alpha1.IstioInstallSpec{Waypoints: []meshv1alpha1.IstioWaypoint{
				{Namespace: theirs}, {Namespace: bare, Name: "wp2", For: "all"}}}},
	}
	testenv.Must(t, c.Create(ctx, mi))
	waitCondition(t, c, mi.Name, meshv1alpha1.ComponentsReadyCondition, metav1.ConditionFalse, meshv1alpha1.ComponentsNotReadyReason)
	testenv.MarkAvailable(t, c, cp)
	markDaemonSetsAvailable(t, c, cp)
	got := waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")

	if msg := cond(got, meshv1alpha1.ReadyCondition).Message; !strings.Contains(msg, "0 of 2 waypoints programmed") {
		t.Fatalf("Ready message: %s", msg)
	}
	// The Gateway CRD defaults Programmed to Unknown; only istiod sets it.
	const pendingMsg = "waiting for istiod to program the waypoint (Gateway condition Programmed is Unknown, Pending: Waiting for controller)"
	want := []meshv1alpha1.WaypointStatus{
		{Namespace: theirs, Name: "waypoint", Message: pendingMsg},
		{Namespace: bare, Name: "wp2", Message: pendingMsg},
	}
	if !equalWaypoints(got.Status.Waypoints, want) {
		t.Fatalf("status.waypoints = %+v, want %+v", got.Status.Waypoints, want)
	}
	checkGateway(t, c, theirs, "waypoint", "service")
	checkGateway(t, c, bare, "wp2", "all")
	checkLabels(t, c, theirs, "waypoint", `{"istio.io/use-waypoint":"theirs"}`)
	checkLabels(t, c, bare, "wp2", `{"istio.io/use-waypoint":null}`)

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		var helmCalls atomic.Int32
		wc, writes := testenv.CachedClient(t, m.Manager)
		r := &meshinstall.Reconciler{Deps: controlplane.Deps{Client: wc, APIReader: m.GetAPIReader(), Registry: m.Registry,
			Helm: countingHelm{Releaser: mustEngine(t, m), calls: &helmCalls}, Events: events.NewFakeRecorder(100),
			Clock: clock.RealClock{}, OperatorNamespace: testenv.OperatorNamespace}}
		for range 3 {
			res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: mi.Name}})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter == 0 {
				t.Fatal("an unprogrammed waypoint should be looked at again")
			}
		}
		if writes.Count() != 0 || helmCalls.Load() != 0 {
			t.Fatalf("no-op reconciles sent %d writes (%v) and %d Helm calls, want 0", writes.Count(), writes.Log(), helmCalls.Load())
		}
	})

	t.Run("status follows the Programmed condition", func(t *testing.T) {
		g := &gatewayv1.Gateway{}
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: theirs, Name: "waypoint"}, g))
		apimeta.SetStatusCondition(&g.Status.Conditions, metav1.Condition{Type: string(gatewayv1.GatewayConditionProgrammed),
			Status: metav1.ConditionTrue, Reason: "Programmed", Message: "ok", ObservedGeneration: g.Generation})
		testenv.Must(t, c.Status().Update(ctx, g))
		poke(t, c, mi.Name)
		testenv.Eventually(t, testenv.DefaultTimeout, "waypoint programmed", func() error {
			got := getMI(t, c, mi.Name)
			if msg := cond(got, meshv1alpha1.ReadyCondition).Message; !strings.Contains(msg, "1 of 2 waypoints programmed") {
				return testenv.Errorf("Ready message: %s; waypoints %+v", msg, got.Status.Waypoints)
			}
			if w := got.Status.Waypoints[0]; !w.Programmed || w.Message != "" {
				return testenv.Errorf("waypoints %+v", got.Status.Waypoints)
			}
			return nil
		})
	})

	t.Run("a non-ambient namespace is refused naming the field", func(t *testing.T) {
		before := &corev1.Namespace{}
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: sidecar}, before))
		patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) {
			s.Istio.Waypoints = append(s.Istio.Waypoints, meshv1alpha1.IstioWaypoint{Namespace: sidecar})
		})
		got := waitCondition(t, c, mi.Name, meshv1alpha1.StalledCondition, metav1.ConditionTrue, meshv1alpha1.InvalidSpecReason)
		wantMsg := `spec.istio.waypoints[2].namespace: namespace "` + sidecar + `" is not in the ambient data plane, and waypoints serve only ambient namespaces; ` +
			"label it istio.io/dataplane-mode=ambient or remove the entry"
		if msg := cond(got, meshv1alpha1.StalledCondition).Message; msg != wantMsg {
			t.Fatalf("Stalled message:\n got %s\nwant %s", msg, wantMsg)
		}
		var gws gatewayv1.GatewayList
		testenv.Must(t, c.List(ctx, &gws, client.InNamespace(sidecar)))
		after := &corev1.Namespace{}
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: sidecar}, after))
		if len(gws.Items) != 0 || after.ResourceVersion != before.ResourceVersion {
			t.Fatalf("refused namespace changed: %d Gateways, labels %v", len(gws.Items), after.Labels)
		}
		if len(got.Status.Waypoints) != 2 {
			t.Fatalf("the other waypoints should stay: %+v", got.Status.Waypoints)
		}
		checkGateway(t, c, bare, "wp2", "all")
	})

	t.Run("removing an entry deletes its waypoint and restores the label", func(t *testing.T) {
		patchSpec(t, c, mi.Name, func(s *meshv1alpha1.MeshInstallSpec) {
			s.Istio.Waypoints = []meshv1alpha1.IstioWaypoint{{Namespace: theirs}}
		})
		got := waitCondition(t, c, mi.Name, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "")
		if len(got.Status.Waypoints) != 1 || got.Status.Waypoints[0].Namespace != theirs {
			t.Fatalf("status.waypoints = %+v", got.Status.Waypoints)
		}
		checkGone(t, c, bare, "wp2")
		ns := &corev1.Namespace{}
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: bare}, ns))
		if _, ok := ns.Labels[useWaypoint]; ok {
			t.Fatalf("label %s should be gone (it was absent): %v", useWaypoint, ns.Labels)
		}
		if _, ok := ns.Annotations[meshinstall.PriorLabelsAnnotation]; ok {
			t.Fatalf("record should be gone: %v", ns.Annotations)
		}
	})

	t.Run("deleting the MeshInstall deletes the waypoint and restores the label", func(t *testing.T) {
		testenv.Must(t, c.Delete(ctx, getMI(t, c, mi.Name)))
		testenv.Eventually(t, testenv.DefaultTimeout, "MeshInstall gone", func() error {
			err := c.Get(ctx, client.ObjectKey{Name: mi.Name}, &meshv1alpha1.MeshInstall{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return testenv.Errorf("still there: %v", err)
		})
		checkGone(t, c, theirs, "waypoint")
		ns := &corev1.Namespace{}
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: theirs}, ns))
		if ns.Labels[useWaypoint] != "theirs" {
			t.Fatalf("label %s = %q, want the prior value theirs", useWaypoint, ns.Labels[useWaypoint])
		}
		if _, ok := ns.Annotations[meshinstall.PriorLabelsAnnotation]; ok {
			t.Fatalf("record should be gone: %v", ns.Annotations)
		}
	})
}

// markDaemonSetsAvailable plays the kubelet for the DaemonSets of ns
// (ambient's istio-cni and ztunnel): one pod scheduled, ready and updated.
func markDaemonSetsAvailable(t *testing.T, c client.Client, ns string) {
	t.Helper()
	var list appsv1.DaemonSetList
	testenv.Must(t, c.List(ctx, &list, client.InNamespace(ns)))
	for i := range list.Items {
		d := &list.Items[i]
		d.Status = appsv1.DaemonSetStatus{ObservedGeneration: d.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
			NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1}
		testenv.Must(t, c.Status().Update(ctx, d))
	}
}

func equalWaypoints(a, b []meshv1alpha1.WaypointStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// poke changes an annotation of MeshInstall name so it is reconciled now.
func poke(t *testing.T, c client.Client, name string) {
	t.Helper()
	mi := getMI(t, c, name)
	base := mi.DeepCopy()
	metav1.SetMetaDataAnnotation(&mi.ObjectMeta, "test/poke", mi.ResourceVersion)
	testenv.Must(t, c.Patch(ctx, mi, client.MergeFrom(base)))
}

func checkGateway(t *testing.T, c client.Client, ns, name, forWhat string) {
	t.Helper()
	g := &gatewayv1.Gateway{}
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, g))
	l := g.Spec.Listeners
	if g.Spec.GatewayClassName != "istio-waypoint" || len(l) != 1 || l[0].Name != "mesh" || l[0].Port != 15008 || l[0].Protocol != "HBONE" ||
		g.Labels["istio.io/waypoint-for"] != forWhat || len(g.OwnerReferences) != 0 {
		t.Fatalf("waypoint %s/%s: %+v %+v", ns, name, g.ObjectMeta, g.Spec)
	}
}

func checkGone(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, "waypoint "+ns+"/"+name+" deleted", func() error {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &gatewayv1.Gateway{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return testenv.Errorf("still there: %v", err)
	})
}

// checkLabels checks namespace ns's waypoint label and the record of its
// prior value.
func checkLabels(t *testing.T, c client.Client, ns, label, record string) {
	t.Helper()
	n := &corev1.Namespace{}
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
	var got, want map[string]*string
	testenv.Must(t, json.Unmarshal([]byte(record), &want))
	if err := json.Unmarshal([]byte(n.Annotations[meshinstall.PriorLabelsAnnotation]), &got); err != nil {
		t.Fatalf("namespace %s record: %v (%v)", ns, err, n.Annotations)
	}
	if n.Labels[useWaypoint] != label || len(got) != 1 || !samePtr(got[useWaypoint], want[useWaypoint]) {
		t.Fatalf("namespace %s: labels %v, annotations %v", ns, n.Labels, n.Annotations)
	}
}

func samePtr(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
