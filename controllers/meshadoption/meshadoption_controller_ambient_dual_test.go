package meshadoption_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	securityv1beta1 "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshadoption"
	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/upgrade"
	"github.com/meshplane/meshplane/test/testenv"
)

// sidecarApp is an Istio sidecar namespace with a rolled-out Deployment,
// a TrafficSplit web (web-v1 90, web-v2 10) and an L7 ZeroTrustPolicy web
// (GET from frontend on 8080), which ambient enforces at a waypoint.
func sidecarApp(t *testing.T, c client.Client, name string) {
	t.Helper()
	testenv.Must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"istio-injection": "enabled"}}}))
	testenv.Must(t, c.Create(ctx, deploymentSpec(name)))
	testenv.MarkAvailable(t, c, name)
	for _, s := range []string{"web", "web-v1", "web-v2"} {
		testenv.Must(t, c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s, Namespace: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}))
	}
	testenv.Must(t, c.Create(ctx, &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: name},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}))
	testenv.Must(t, c.Create(ctx, l7Policy(name)))
}

// authz reads AuthorizationPolicy name of ns (nil when absent).
func authz(c client.Client, ns, name string) (*istiosecurity.AuthorizationPolicy, error) {
	ap := &istiosecurity.AuthorizationPolicy{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ap)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return ap, err
}

// hasL7 reports whether ap allows by HTTP method (the sidecar form's rule).
func hasL7(ap *istiosecurity.AuthorizationPolicy) bool {
	return ap != nil && ruleMentions(ap, "GET")
}

// ruleMentions reports whether a rule of ap mentions s.
func ruleMentions(ap *istiosecurity.AuthorizationPolicy, s string) bool {
	return slices.ContainsFunc(ap.Spec.Rules, func(r *securityv1beta1.Rule) bool { return strings.Contains(r.String(), s) })
}

// exists reports whether the object of kind (apiVersion, kind) ns/name exists.
func exists(c client.Client, apiVersion, kind, ns, name string) (bool, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// watchPolicies is the outputs watcher: it fails (bad) when a namespace
// has no AuthorizationPolicy web, or when one of its pods may still run a
// sidecar (the namespace carries a sidecar label or the move's
// mesh.DataPlaneFromAnnotation) while web lacks the L7 rule the sidecar
// enforces. The policy is read before the namespace: both conditions only
// ever end, so a namespace still moving when read was moving when the
// policy was read. It notes (both) a namespace seen labelled ambient with
// the sidecar form and the waypoint policy in force together. It also
// fails when a namespace's workloads restarted into ambient (restartStamp)
// while its waypoint policy did not exist yet: the Deployment is read
// first, the namespace last, so a namespace still moving when read had
// not been moved back when the policy was read.
func watchPolicies(c client.Client, names []string, restartStamp string, bad, both *sync.Map, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		for _, n := range names {
			d := deploymentOrNil(c, n)
			ap, err1 := authz(c, n, "web")
			wp, err2 := authz(c, n, "web-waypoint")
			ns := nsOrNil(c, n)
			if err1 != nil || err2 != nil || ns == nil || d == nil {
				continue
			}
			_, moving := ns.Annotations[mesh.DataPlaneFromAnnotation]
			sidecar := ns.Labels["istio-injection"] != "" || moving
			switch {
			case moving && wp == nil && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], restartStamp):
				bad.Store(n, "workloads restarted into ambient before the ambient outputs were written")
			case ap == nil:
				bad.Store(n, "no AuthorizationPolicy web in force")
			case sidecar && !hasL7(ap):
				bad.Store(n, fmt.Sprintf("pods may run a sidecar (labels %v, annotations %v) but web lost its L7 rule: %v", ns.Labels, ns.Annotations, ap.Spec.Rules))
			case ns.Labels["istio.io/dataplane-mode"] == "ambient" && hasL7(ap) && wp != nil:
				both.Store(n, true)
			}
		}
	}
}

// playAmbientDual stands in for the deployment controller (every
// restarted Deployment becomes Available, except failing's in ambient)
// and istiod (waypoints programmed). A restart takes a second, as pods
// do: the wave is seen in flight.
func playAmbientDual(c client.Client, names []string, failing, failStamp string, stop chan struct{}) {
	restarted := map[string]time.Time{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		for _, n := range names {
			g := &gatewayv1.Gateway{}
			if c.Get(ctx, client.ObjectKey{Namespace: n, Name: "waypoint"}, g) == nil &&
				!apimeta.IsStatusConditionTrue(g.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed)) {
				apimeta.SetStatusCondition(&g.Status.Conditions, metav1.Condition{Type: string(gatewayv1.GatewayConditionProgrammed),
					Status: metav1.ConditionTrue, Reason: "Programmed", Message: "ok", ObservedGeneration: g.Generation})
				_ = c.Status().Update(ctx, g)
			}
			d := deploymentOrNil(c, n)
			if d == nil || d.Status.ObservedGeneration == d.Generation {
				continue
			}
			key := fmt.Sprintf("%s/%d", n, d.Generation)
			if _, ok := restarted[key]; !ok {
				restarted[key] = time.Now()
			}
			if time.Since(restarted[key]) < time.Second ||
				n == failing && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], failStamp) {
				continue
			}
			markAvailable(c, d)
		}
	}
}

// TestSidecarToAmbientKeepsSidecarForm moves two Istio sidecar namespaces
// to ambient in waves of one, with the TrafficSplit and ZeroTrustPolicy
// controllers running; each has a TrafficSplit and an L7 ZeroTrustPolicy.
// The outputs watcher fails the test if a namespace is ever without its
// policy, or without the sidecar form's L7 rule while a pod may still run
// a sidecar; both forms must be seen in force together during each wave.
// sd-1 passes its gate: the annotation goes, only the ambient form stays
// (ztunnel policy without the L7 rule, waypoint policy, HTTPRoute). sd-2's
// workload never becomes Ready in ambient: it is moved back, the waypoint
// policy and HTTPRoute are pruned, and its PeerAuthentication and
// AuthorizationPolicy are the very same objects as before the wave, with
// the sidecar form's rules.
func TestSidecarToAmbientKeepsSidecarForm(t *testing.T) {
	cfg := env.Cfg(t)
	m := testenv.StartManager(t, cfg, testenv.ManagerOptions{}, meshadoption.Setup, trafficsplit.Setup, zerotrustpolicy.Setup)
	c := m.Client
	readyInstall(t, c, "istio-sd", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileAmbient)
	names := []string{"sd-1", "sd-2"}
	for _, n := range names {
		sidecarApp(t, c, n)
	}
	var before map[string]types.UID
	testenv.Eventually(t, 20*time.Second, "sidecar outputs", func() error {
		for _, n := range names {
			ap, err := authz(c, n, "web")
			if err != nil || !hasL7(ap) {
				return fmt.Errorf("%s: AuthorizationPolicy web %v %v", n, ap, err)
			}
			if ok, err := exists(c, "networking.istio.io/v1", "VirtualService", n, "web"); !ok {
				return fmt.Errorf("%s: VirtualService web: %v", n, err)
			}
		}
		p := &meshv1alpha1.ZeroTrustPolicy{}
		testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: "sd-2", Name: "web"}, p))
		var err error
		before, err = uids(c, p.Status.Inventory)
		return err
	})
	stop := make(chan struct{})
	defer close(stop)
	var bad, both sync.Map
	go playAmbientDual(c, names, "sd-2", "adoption-sd-to-ambient@", stop)
	go watchPolicies(c, names, "adoption-sd-to-ambient@", &bad, &both, stop)

	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "sd-to-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-sd"}, Mode: meshv1alpha1.ProfileAmbient,
			Namespaces: names, Waves: meshv1alpha1.AdoptionWaves{Size: 1, HealthTimeout: &metav1.Duration{Duration: 4 * time.Second}}}}
	testenv.Must(t, c.Create(ctx, ma))
	got := waitAdoption(t, c, ma.Name, "held by sd-2's failed gate", 60*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason)
	})
	if w := got.Status.Waves; len(w) != 2 || w[0].Phase != meshv1alpha1.WaveEnrolled || w[1].Phase != meshv1alpha1.WaveMovedBack {
		t.Fatalf("waves: %+v", w)
	}
	testenv.Eventually(t, 20*time.Second, "sd-1 ambient only, sd-2 sidecar only", func() error {
		for n, ambient := range map[string]bool{"sd-1": true, "sd-2": false} {
			ns := nsOf(t, c, n)
			if _, ok := ns.Annotations[mesh.DataPlaneFromAnnotation]; ok {
				return fmt.Errorf("%s keeps %s", n, mesh.DataPlaneFromAnnotation)
			}
			ap, err := authz(c, n, "web")
			if err != nil || ap == nil || hasL7(ap) == ambient {
				return fmt.Errorf("%s: AuthorizationPolicy web %v %v", n, ap, err)
			}
			wp, err := authz(c, n, "web-waypoint")
			if err != nil || (wp != nil) != ambient {
				return fmt.Errorf("%s: AuthorizationPolicy web-waypoint %v %v", n, wp, err)
			}
			vs, err1 := exists(c, "networking.istio.io/v1", "VirtualService", n, "web")
			hr, err2 := exists(c, "gateway.networking.k8s.io/v1", "HTTPRoute", n, "web")
			if err1 != nil || err2 != nil || vs == ambient || hr != ambient {
				return fmt.Errorf("%s: VirtualService %v, HTTPRoute %v (%v %v)", n, vs, hr, err1, err2)
			}
		}
		return nil
	})
	bad.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	for _, n := range names {
		if _, ok := both.Load(n); !ok {
			t.Errorf("%s: the sidecar and ambient forms were never seen in force together", n)
		}
	}
	p := &meshv1alpha1.ZeroTrustPolicy{}
	testenv.Must(t, c.Get(ctx, client.ObjectKey{Namespace: "sd-2", Name: "web"}, p))
	if after, err := uids(c, p.Status.Inventory); err != nil || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("sd-2's sidecar outputs were replaced: before %v, after %v (%v)", before, after, err)
	}
	if ap, _ := authz(c, "sd-2", "web"); ap != nil && ruleMentions(ap, "sd-2/waypoint") {
		t.Errorf("sd-2's AuthorizationPolicy web keeps the ambient form's waypoint rule: %v", ap.Spec.Rules)
	}
}

// TestAmbientWaveWaitsForAmbientOutputs: with no ZeroTrustPolicy
// controller to write them, the ambient outputs of sw-1's L7 policy never
// appear, so its workloads are never restarted into ambient: the wave
// names the missing output and, at its health timeout, is moved back.
func TestAmbientWaveWaitsForAmbientOutputs(t *testing.T) {
	cfg := env.Cfg(t)
	m := startManager(t, cfg)
	c := m.Client
	readyInstall(t, c, "istio-sw", meshv1alpha1.ProviderIstio, meshv1alpha1.ProfileAmbient)
	app(t, c, "sw-1", map[string]string{"istio-injection": "enabled"})
	testenv.Must(t, c.Create(ctx, l7Policy("sw-1")))
	stop := make(chan struct{})
	defer close(stop)
	go playAmbientDual(c, []string{"sw-1"}, "", "-", stop)
	var restarted sync.Map
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if d := deploymentOrNil(c, "sw-1"); d != nil && strings.HasPrefix(d.Spec.Template.Annotations[upgrade.DataPlaneAnnotation], "adoption-sw-to-ambient@") {
				restarted.Store("sw-1", true)
			}
		}
	}()
	ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Name: "sw-to-ambient"},
		Spec: meshv1alpha1.MeshAdoptionSpec{MeshInstallRef: meshv1alpha1.LocalObjectReference{Name: "istio-sw"}, Mode: meshv1alpha1.ProfileAmbient,
			Namespaces: []string{"sw-1"}, Waves: meshv1alpha1.AdoptionWaves{Size: 1, HealthTimeout: &metav1.Duration{Duration: 3 * time.Second}}}}
	testenv.Must(t, c.Create(ctx, ma))
	waitAdoption(t, c, ma.Name, "waiting for the ambient outputs", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		if w := ma.Status.Waves; len(w) != 1 || !strings.Contains(w[0].Message, "sw-1: AuthorizationPolicy web-waypoint of ZeroTrustPolicy web not written yet") {
			return fmt.Errorf("waves %+v", w)
		}
		return nil
	})
	waitAdoption(t, c, ma.Name, "moved back", 20*time.Second, func(ma *meshv1alpha1.MeshAdoption) error {
		return condIs(ma, meshv1alpha1.StalledCondition, "True", meshv1alpha1.HealthGateFailedReason)
	})
	if _, ok := restarted.Load("sw-1"); ok {
		t.Fatal("sw-1's workloads were restarted into ambient before its ambient outputs existed")
	}
	if ns := nsOf(t, c, "sw-1"); ns.Labels["istio-injection"] != "enabled" || ns.Annotations[mesh.DataPlaneFromAnnotation] != "" {
		t.Fatalf("sw-1 not moved back: %v %v", ns.Labels, ns.Annotations)
	}
}
