package meshfederation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/remote"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/trust"
	"github.com/meshplane/meshplane/test/testenv"
)

var forward = []meshv1alpha1.RotationPhase{meshv1alpha1.RotationAddingRoot, meshv1alpha1.RotationWaitingForReload,
	meshv1alpha1.RotationSwitchingIntermediates, meshv1alpha1.RotationWaitingForWorkloads,
	meshv1alpha1.RotationRemovingOldRoot, meshv1alpha1.RotationCompleted}

func equalPhases(a, b []meshv1alpha1.RotationPhase) bool {
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

// TestFederation runs one federation over three real API servers through
// distribution, no-op reconciles, rotations (with workload waits, with a
// member cut off mid-rotation, aborted), bad input and deletion.
func TestFederation(t *testing.T) {
	e := setup(t)
	top := t // for what must outlive a subtest
	ctx := context.Background()
	mustCreate(t, e.local, federation("mesh"))
	f := e.waitReady(t, "mesh")
	root := f.Status.Root.Fingerprint
	if f.Status.ReadyClusters != "3/3" || len(f.Status.BundleFingerprints) != 1 || f.Status.BundleFingerprints[0] != root {
		t.Fatalf("status: %+v", f.Status)
	}

	t.Run("distributed", func(t *testing.T) {
		for name, c := range e.members {
			tt := e.targets[name]
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: tt.Namespace, Name: tt.IssuerSecret}, s); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s.Type != tt.IssuerSecretType || !ownership.IsOwnedBy(s, "MeshFederation", "", "mesh") {
				t.Fatalf("%s: type %s labels %v", name, s.Type, s.Labels)
			}
			var keys []string
			for k := range s.Data {
				keys = append(keys, k)
			}
			for _, k := range []string{tt.CertKey, tt.KeyKey, tt.RootKey, tt.ChainKey} {
				if k != "" && len(s.Data[k]) == 0 {
					t.Fatalf("%s: Secret %s lacks %s (has %v)", name, tt.IssuerSecret, k, keys)
				}
			}
			if len(s.ManagedFields) == 0 || s.ManagedFields[0].Manager != ownership.FieldManager {
				t.Fatalf("%s: field managers %+v", name, s.ManagedFields)
			}
			ca, err := trust.ParseCA(s.Data[tt.CertKey], s.Data[tt.KeyKey], time.Now())
			if err != nil {
				t.Fatalf("%s: intermediate: %v", name, err)
			}
			if ca.Cert.MaxPathLen != 0 || !ca.Cert.MaxPathLenZero {
				t.Fatalf("%s: path length", name)
			}
			if name == "west" && ca.Cert.Subject.CommonName != "identity.linkerd.cluster.local" {
				t.Fatalf("Linkerd issuer CN %q", ca.Cert.Subject.CommonName)
			}
			if tt.ChainKey != "" {
				chain, _ := trust.ParseCerts(s.Data[tt.ChainKey])
				if len(chain) != 2 || trust.Fingerprint(chain[1]) != root || !trust.SignedBy(chain[0], chain[1]) {
					t.Fatalf("%s: cert-chain.pem is not intermediate+root", name)
				}
			}
			if tt.BundleConfigMap != "" {
				cm := &corev1.ConfigMap{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: tt.Namespace, Name: tt.BundleConfigMap}, cm); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !ownership.IsOwnedBy(cm, "MeshFederation", "", "mesh") || cm.Data[tt.BundleConfigMapKey] == "" {
					t.Fatalf("%s: ConfigMap %+v", name, cm)
				}
			}
		}
		e.checkAll(t, root, root)
		// Intermediates differ per cluster.
		a, _ := e.read(ctx, "local")
		b, _ := e.read(ctx, "east")
		if trust.Fingerprint(a.issuer) == trust.Fingerprint(b.issuer) {
			t.Fatal("two clusters share an intermediate")
		}
		// The remote identity has exactly RemoteRBAC: nothing else.
		kc := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: opNS, Name: "east-kubeconfig"}, kc); err != nil {
			t.Fatal(err)
		}
		rc, err := remote.RESTConfig("east", kc.Data["kubeconfig"], 0)
		if err != nil {
			t.Fatal(err)
		}
		limited := testenv.NewClient(t, rc)
		if err := limited.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "cacerts"}, &corev1.Secret{}); err != nil {
			t.Fatalf("remote identity cannot read cacerts: %v", err)
		}
		if err := limited.Get(ctx, client.ObjectKey{Namespace: "istio-system", Name: "other"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
			t.Fatalf("remote identity may read other Secrets: %v", err)
		}
		if err := limited.List(ctx, &corev1.SecretList{}); !apierrors.IsForbidden(err) {
			t.Fatalf("remote identity may list Secrets: %v", err)
		}
		// The root key stays in the operator namespace.
		s := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: opNS, Name: meshfederation.CASecretName("mesh")}, s); err != nil || len(s.Data["tls.key"]) == 0 {
			t.Fatalf("root state Secret: %v", err)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		var remotes []*testenv.Writes
		wrap := func(c client.Client) client.Client {
			wc, w := testenv.CountWrites(noWatch{c})
			remotes = append(remotes, w)
			return wc
		}
		local, err := client.NewWithWatch(e.localCfg.Config, client.Options{Scheme: scheme.New()})
		if err != nil {
			t.Fatal(err)
		}
		cl, writes := testenv.CountWrites(local)
		r := &meshfederation.Reconciler{Client: cl, Local: cl, Registry: providers.Registry(),
			Remote: &remote.Cache{Scheme: scheme.New(), Wrap: wrap}, OperatorNamespace: opNS}
		for range 3 {
			res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: "mesh"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter <= 0 {
				t.Fatalf("no resync requested: %+v", res)
			}
		}
		n, log := writes.Count(), writes.Log()
		for _, w := range remotes {
			n, log = n+w.Count(), append(log, w.Log()...)
		}
		if n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, log)
		}
	})

	t.Run("rotation waits for workloads", func(t *testing.T) {
		// A meshed pod on west that started before the rotation.
		mustCreate(t, e.west, ns("app"), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "default"}})
		pod := startPod(t, e.west, "web")
		w := e.watchSafety()
		rec := e.recordPhases(t, "mesh")
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) { f.Spec.Rotation.Trigger = "r1" })
		f := e.waitPhase(t, "mesh", "r1", meshv1alpha1.RotationWaitingForReload, 30*time.Second)
		testenv.Eventually(t, 20*time.Second, "holding for the old pod", func() error {
			f = e.get(t, "mesh")
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.RotatingCondition)
			if f.Status.Rotation.Phase != meshv1alpha1.RotationWaitingForReload {
				return testenv.Errorf("did not hold for the old pod: %+v", f.Status.Rotation)
			}
			if !strings.Contains(f.Status.Rotation.Message, "west:app/web") || c == nil || c.Reason != meshv1alpha1.WaitingReason ||
				!strings.Contains(c.Message, "west:app/web") {
				return testenv.Errorf("rotation %+v, Rotating %+v", f.Status.Rotation, c)
			}
			return nil
		})
		time.Sleep(time.Second)
		if f = e.get(t, "mesh"); f.Status.Rotation.Phase != meshv1alpha1.RotationWaitingForReload {
			t.Fatalf("did not hold for the old pod: %+v", f.Status.Rotation)
		}
		restartPod(t, e.west, pod, f.Status.Rotation.PhaseStartTime.Time)
		f = e.waitPhase(t, "mesh", "r1", meshv1alpha1.RotationWaitingForWorkloads, 30*time.Second)
		time.Sleep(time.Second)
		if f = e.get(t, "mesh"); f.Status.Rotation.Phase != meshv1alpha1.RotationWaitingForWorkloads {
			t.Fatalf("did not hold in WaitingForWorkloads: %+v", f.Status.Rotation)
		}
		restartPod(t, e.west, pod, f.Status.Rotation.PhaseStartTime.Time)
		f = e.waitPhase(t, "mesh", "r1", meshv1alpha1.RotationCompleted, 30*time.Second)
		rec.settle(t, f.Status.Rotation.Phase)
		rec.stop()
		w.finish(t)
		if got := rec.get(); !equalPhases(got, forward) {
			t.Fatalf("phases %v, want %v", got, forward)
		}
		newRoot := f.Status.Root.Fingerprint
		if newRoot == root || f.Status.Rotation.OldRootFingerprint != root || f.Status.Rotation.NewRootFingerprint != newRoot {
			t.Fatalf("root after rotation: %+v", f.Status.Rotation)
		}
		e.checkAll(t, newRoot, newRoot)
		e.waitReady(t, "mesh")
		root = newRoot
		if err := e.west.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("full rotation with minimum waits", func(t *testing.T) {
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Rotation.WaitForWorkloads = ptr(false)
			f.Spec.Rotation.Trigger = "r2"
		})
		start := time.Now()
		w := e.watchSafety()
		f := e.waitPhase(t, "mesh", "r2", meshv1alpha1.RotationCompleted, 30*time.Second)
		took := time.Since(start)
		w.finish(t)
		t.Logf("FIGURE full rotation over 3 clusters, minPhaseWait 0, waitForWorkloads false: %s", took.Round(time.Millisecond))
		e.checkAll(t, f.Status.Root.Fingerprint, f.Status.Root.Fingerprint)
		root = f.Status.Root.Fingerprint
	})

	t.Run("unreachable member holds the rotation", func(t *testing.T) {
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Rotation.MinPhaseWait = &metav1.Duration{Duration: 2 * time.Second}
			f.Spec.Rotation.Trigger = "r3"
		})
		w := e.watchSafety()
		f := e.waitPhase(t, "mesh", "r3", meshv1alpha1.RotationWaitingForReload, 30*time.Second)
		e.westProxy.cut()
		testenv.Eventually(t, 20*time.Second, "west unreachable", func() error {
			f = e.get(t, "mesh")
			if c := memberCondition(f, "west", meshv1alpha1.ClusterReachableCondition); c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ClusterUnreachableReason {
				return testenv.Errorf("west ClusterReachable %+v", c)
			}
			return nil
		})
		time.Sleep(time.Until(f.Status.Rotation.PhaseStartTime.Add(4 * time.Second))) // twice the minimum wait
		f = e.get(t, "mesh")
		if f.Status.Rotation.Phase != meshv1alpha1.RotationWaitingForReload {
			t.Fatalf("rotation moved on with west unreachable: %+v", f.Status.Rotation)
		}
		if c := memberCondition(f, "west", meshv1alpha1.ClusterReachableCondition); c == nil || c.Status != metav1.ConditionFalse {
			t.Fatalf("west ClusterReachable %+v", c)
		}
		for _, m := range []string{"local", "east"} {
			if c := memberCondition(f, m, meshv1alpha1.DistributedCondition); c == nil || c.Status != metav1.ConditionTrue {
				t.Fatalf("%s blocked by west: %+v", m, c)
			}
		}
		if f.Status.ReadyClusters != "2/3" || !strings.Contains(f.Status.Rotation.Message, "west") {
			t.Fatalf("status while west is cut: %s %+v", f.Status.ReadyClusters, f.Status.Rotation)
		}
		if err := e.westProxy.start(); err != nil {
			t.Fatal(err)
		}
		f = e.waitPhase(t, "mesh", "r3", meshv1alpha1.RotationCompleted, 60*time.Second)
		w.finish(t)
		e.checkAll(t, f.Status.Root.Fingerprint, f.Status.Root.Fingerprint)
		root = f.Status.Root.Fingerprint
		e.waitReady(t, "mesh")
	})

	t.Run("a changed kubeconfig Secret takes effect", func(t *testing.T) {
		// East moves behind a new address; the old one goes away.
		moved := newProxy(top, hostPort(t, e.eastCfg.Config))
		kc := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: opNS, Name: "east-kubeconfig"}, kc); err != nil {
			t.Fatal(err)
		}
		kc.Data["kubeconfig"] = []byte(strings.Replace(string(kc.Data["kubeconfig"]), e.eastProxy.addr, moved.addr, 1))
		if err := e.local.Update(ctx, kc); err != nil {
			t.Fatal(err)
		}
		e.eastProxy.cut()
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Rotation.MinPhaseWait = &metav1.Duration{}
			f.Spec.Rotation.Trigger = "r3b"
		})
		f := e.waitPhase(t, "mesh", "r3b", meshv1alpha1.RotationCompleted, 30*time.Second)
		root = f.Status.Root.Fingerprint
		e.waitReady(t, "mesh")
		e.checkAll(t, root, root)
	})

	t.Run("abort returns to the previous root", func(t *testing.T) {
		rec := e.recordPhases(t, "mesh")
		w := e.watchSafety()
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Rotation.MinPhaseWait = &metav1.Duration{Duration: 3 * time.Second}
			f.Spec.Rotation.Trigger = "r4"
		})
		f := e.waitPhase(t, "mesh", "r4", meshv1alpha1.RotationWaitingForWorkloads, 30*time.Second)
		newRoot := f.Status.Rotation.NewRootFingerprint
		e.checkAll(t, newRoot, root, newRoot) // intermediates already switched
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) { f.Spec.Rotation.Abort = true })
		e.waitPhase(t, "mesh", "r4", meshv1alpha1.RotationIdle, 30*time.Second)
		rec.settle(t, meshv1alpha1.RotationIdle)
		rec.stop()
		w.finish(t)
		want := append(append([]meshv1alpha1.RotationPhase{}, forward[:4]...), meshv1alpha1.RotationAborting, meshv1alpha1.RotationIdle)
		if got := rec.get(); !equalPhases(got, want) {
			t.Fatalf("phases %v, want %v", got, want)
		}
		f = e.waitReady(t, "mesh")
		if f.Status.Root.Fingerprint != root {
			t.Fatalf("root after abort %s, want %s", f.Status.Root.Fingerprint, root)
		}
		e.checkAll(t, root, root)
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) { f.Spec.Rotation.Abort = false })
		e.waitReady(t, "mesh")
		if f := e.get(t, "mesh"); f.Status.Rotation.Phase != meshv1alpha1.RotationIdle {
			t.Fatalf("clearing abort restarted the aborted rotation: %+v", f.Status.Rotation)
		}
	})

	t.Run("abort refused once the old root is being removed", func(t *testing.T) {
		w := e.watchSafety()
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Rotation.MinPhaseWait = &metav1.Duration{Duration: 2 * time.Second}
			f.Spec.Rotation.Trigger = "r5"
		})
		e.waitPhase(t, "mesh", "r5", meshv1alpha1.RotationWaitingForWorkloads, 30*time.Second)
		// West may still read but no longer write: the waiting phase
		// (reads only) completes, RemovingOldRoot (a write) holds.
		setRoleVerbs(t, e.west, "linkerd", "get")
		f := e.waitPhase(t, "mesh", "r5", meshv1alpha1.RotationRemovingOldRoot, 30*time.Second)
		testenv.Eventually(t, 20*time.Second, "west refused", func() error {
			f = e.get(t, "mesh")
			if c := memberCondition(f, "west", meshv1alpha1.DistributedCondition); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "forbidden") {
				return testenv.Errorf("west Distributed %+v", c)
			}
			return nil
		})
		time.Sleep(time.Second)
		if f = e.get(t, "mesh"); f.Status.Rotation.Phase != meshv1alpha1.RotationRemovingOldRoot {
			t.Fatalf("RemovingOldRoot did not hold for west: %+v", f.Status.Rotation)
		}
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) { f.Spec.Rotation.Abort = true })
		testenv.Eventually(t, 10*time.Second, "abort refused", func() error {
			f := e.get(t, "mesh")
			c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.RotatingCondition)
			if f.Status.Rotation.Phase != meshv1alpha1.RotationRemovingOldRoot || c == nil || !strings.Contains(c.Message, "abort refused") {
				return testenv.Errorf("rotation %+v rotating %+v", f.Status.Rotation, c)
			}
			return nil
		})
		setRoleVerbs(t, e.west, "linkerd", "get", "patch")
		f = e.waitPhase(t, "mesh", "r5", meshv1alpha1.RotationCompleted, 30*time.Second)
		w.finish(t)
		root = f.Status.Root.Fingerprint
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) { f.Spec.Rotation.Abort = false })
		e.waitReady(t, "mesh")
		e.checkAll(t, root, root)
	})

	t.Run("intermediates renew", func(t *testing.T) {
		first, err := e.read(ctx, "east")
		if err != nil {
			t.Fatal(err)
		}
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Intermediate = &meshv1alpha1.IntermediateCA{Lifetime: &metav1.Duration{Duration: time.Hour},
				RenewBefore: &metav1.Duration{Duration: time.Hour - 2*time.Second}}
		})
		// Shortened lifetime: re-issued at once; then renewed when due,
		// about two seconds later, without anyone touching the spec.
		seen := map[string]bool{trust.Fingerprint(first.issuer): true}
		testenv.Eventually(t, 20*time.Second, "two renewals", func() error {
			m, err := e.read(ctx, "east")
			if err != nil {
				return err
			}
			if _, err := trust.IssuerOf(m.issuer, m.bundle); err != nil || trust.Fingerprint(m.bundle[0]) != root {
				return testenv.Errorf("renewed intermediate not under the root: %v", err)
			}
			if m.issuer.NotAfter.Sub(m.issuer.NotBefore) > time.Hour+6*time.Minute {
				return testenv.Errorf("lifetime %s", m.issuer.NotAfter.Sub(m.issuer.NotBefore))
			}
			seen[trust.Fingerprint(m.issuer)] = true
			if len(seen) < 3 {
				return testenv.Errorf("%d intermediates seen", len(seen))
			}
			return nil
		})
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) { f.Spec.Intermediate = nil })
		e.waitReady(t, "mesh")
		// Every write left an Event on the federation.
		var evs eventsv1.EventList
		if err := e.local.List(ctx, &evs); err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == "mesh" && ev.Regarding.Kind == "MeshFederation" {
				reasons[ev.Reason]++
			}
		}
		for _, r := range []string{"RootStored", "IssuerWritten", "BundleWritten", "RotationStarted", "RotationPhase", "RotationAborted"} {
			if reasons[r] == 0 {
				t.Errorf("no %s Event (have %v)", r, reasons)
			}
		}
	})

	t.Run("bad root keeps what was distributed", func(t *testing.T) {
		before := map[string]string{}
		for name := range e.members {
			m, err := e.read(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			before[name] = m.rv
		}
		for _, tc := range []struct {
			name, want string
			cert, key  []byte
		}{
			{"not-a-ca", "is not a CA", nil, nil},
			{"expired", "expired at", nil, nil},
			{"pathlen0", "spec.root.secretRef: root Secret " + opNS + `/pathlen0 (tls.crt, tls.key): invalid CA: certificate "CN=pathlen0" has basic constraints pathlen:0`, nil, nil},
		} {
			cert, key := badRoot(t, tc.name)
			mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: tc.name}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"tls.crt": cert, "tls.key": key}})
			e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
				f.Spec.Root = &meshv1alpha1.RootCA{SecretRef: &meshv1alpha1.SecretKeyReference{Name: tc.name}}
			})
			testenv.Eventually(t, 20*time.Second, "Stalled "+tc.name, func() error {
				f := e.get(t, "mesh")
				s := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.StalledCondition)
				rr := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.RootReadyCondition)
				if s == nil || s.Reason != meshv1alpha1.InvalidCertificateReason || !strings.Contains(s.Message, tc.want) ||
					rr == nil || rr.Status != metav1.ConditionFalse || f.Status.ObservedGeneration != f.Generation {
					return testenv.Errorf("conditions %+v", f.Status.Conditions)
				}
				return nil
			})
		}
		for name := range e.members {
			m, err := e.read(ctx, name)
			if err != nil || m.rv != before[name] {
				t.Fatalf("%s changed under a bad root: %v", name, err)
			}
		}
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Root = &meshv1alpha1.RootCA{Generate: &meshv1alpha1.GeneratedRoot{}}
		})
		e.waitReady(t, "mesh")
		e.checkAll(t, root, root)
	})

	t.Run("supplied cert-manager root rotates in", func(t *testing.T) {
		// As cert-manager writes a CA Certificate: SEC 1 key, ca.crt.
		cm, err := trust.GenerateRoot(trust.RootOptions{CommonName: "cert-manager-root"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(cm.Key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "cm-root"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": cm.CertPEM, "ca.crt": cm.CertPEM,
				"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})}})
		w := e.watchSafety()
		e.update(t, "mesh", func(f *meshv1alpha1.MeshFederation) {
			f.Spec.Root = &meshv1alpha1.RootCA{SecretRef: &meshv1alpha1.SecretKeyReference{Name: "cm-root"}}
			f.Spec.Rotation.MinPhaseWait = &metav1.Duration{}
		})
		f := e.waitPhase(t, "mesh", "secret-"+cm.Fingerprint()[:12], meshv1alpha1.RotationCompleted, 30*time.Second)
		w.finish(t)
		if f.Status.Root.Fingerprint != cm.Fingerprint() {
			t.Fatalf("root %s, want the supplied one", f.Status.Root.Fingerprint)
		}
		root = cm.Fingerprint()
		e.waitReady(t, "mesh")
		e.checkAll(t, root, root)
	})

	t.Run("conflicts and bad kubeconfigs are per member", func(t *testing.T) {
		mustCreate(t, e.local, ns("istio-foreign"), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-foreign", Name: "cacerts"},
			Data: map[string][]byte{"ca-cert.pem": []byte("theirs")}})
		mustCreate(t, e.local, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "exec-kubeconfig"},
			Data: map[string][]byte{"kubeconfig": []byte(execKubeconfig)}})
		other := federation("other")
		other.Spec.Clusters = []meshv1alpha1.MemberCluster{
			{Name: "foreign", Provider: meshv1alpha1.ProviderIstio, Namespace: "istio-foreign"},
			{Name: "exec", Provider: meshv1alpha1.ProviderIstio, KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "exec-kubeconfig"}},
			{Name: "east", Provider: meshv1alpha1.ProviderIstio, Namespace: "istio-other", KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "east-kubeconfig"}},
		}
		mustCreate(t, e.local, other)
		testenv.Eventually(t, 30*time.Second, "per-member conditions", func() error {
			f := e.get(t, "other")
			fc := memberCondition(f, "foreign", meshv1alpha1.DistributedCondition)
			ec := memberCondition(f, "exec", meshv1alpha1.DistributedCondition)
			nc := memberCondition(f, "east", meshv1alpha1.DistributedCondition)
			ready := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ReadyCondition)
			switch {
			case fc == nil || fc.Reason != meshv1alpha1.ConflictReason || !strings.Contains(fc.Message, "istio-foreign/cacerts"):
				return testenv.Errorf("foreign: %+v", fc)
			case ec == nil || ec.Reason != meshv1alpha1.InvalidSpecReason || !strings.Contains(ec.Message, "exec plugin"):
				return testenv.Errorf("exec: %+v", ec)
			case nc == nil || nc.Status != metav1.ConditionFalse:
				// east has no istio-other namespace (and no RBAC there).
				return testenv.Errorf("east: %+v", nc)
			case ready == nil || ready.Status != metav1.ConditionFalse:
				return testenv.Errorf("ready: %+v", ready)
			}
			return nil
		})
		s := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "istio-foreign", Name: "cacerts"}, s); err != nil || string(s.Data["ca-cert.pem"]) != "theirs" || len(s.Data) != 1 {
			t.Fatalf("foreign cacerts was modified: %v %v", err, s.Data)
		}
		if err := e.local.Delete(ctx, other); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cilium gets a ClusterMesh CA and refuses rotation", func(t *testing.T) {
		cil := federation("cil")
		cil.Spec.Clusters = []meshv1alpha1.MemberCluster{{Name: "local", Provider: meshv1alpha1.ProviderCilium}}
		mustCreate(t, e.local, cil)
		f := e.waitReady(t, "cil")
		s := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "meshplane-clustermesh-ca"}, s); err != nil {
			t.Fatal(err)
		}
		certs, err := trust.ParseCerts(s.Data["ca.crt"])
		if err != nil || len(certs) != 2 || trust.Fingerprint(certs[1]) != f.Status.Root.Fingerprint || !trust.SignedBy(certs[0], certs[1]) {
			t.Fatalf("meshplane-clustermesh-ca ca.crt is not intermediate + bundle: %v", err)
		}
		if _, err := trust.ParseCA(s.Data["ca.crt"], s.Data["ca.key"], time.Now()); err != nil {
			t.Fatalf("meshplane-clustermesh-ca: %v", err)
		}
		rv := s.ResourceVersion
		e.update(t, "cil", func(f *meshv1alpha1.MeshFederation) { f.Spec.Rotation.Trigger = "now" })
		testenv.Eventually(t, 20*time.Second, "rotation refused", func() error {
			f := e.get(t, "cil")
			st := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.StalledCondition)
			if st == nil || st.Reason != meshv1alpha1.UnsupportedFeatureReason || !strings.Contains(st.Message, "Cilium") {
				return testenv.Errorf("conditions %+v", f.Status.Conditions)
			}
			return nil
		})
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "meshplane-clustermesh-ca"}, s); err != nil || s.ResourceVersion != rv {
			t.Fatalf("meshplane-clustermesh-ca changed by a refused rotation: %v", err)
		}
		if err := e.local.Delete(ctx, f); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bundle merge", func(t *testing.T) {
		a, _ := trust.GenerateRoot(trust.RootOptions{CommonName: "istio-own"}, time.Now())
		b, _ := trust.GenerateRoot(trust.RootOptions{CommonName: "linkerd-own"}, time.Now())
		bi, _ := trust.IssueIntermediate(b, trust.IntermediateOptions{CommonName: "identity.linkerd.cluster.local"}, time.Now())
		mustCreate(t, e.local, ns("istio-merge"), ns("linkerd-merge"),
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-merge", Name: "istio-ca-secret"}, Type: "istio.io/ca-root",
				Data: map[string][]byte{"ca-cert.pem": a.CertPEM, "ca-key.pem": a.KeyPEM, "root-cert.pem": a.CertPEM}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-merge", Name: "linkerd-identity-issuer"}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"tls.crt": bi.CertPEM, "tls.key": bi.KeyPEM, "ca.crt": b.CertPEM}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "local-admin"}, Data: map[string][]byte{"value": e.localCfg.KubeConfig}})
		mustCreate(t, e.local, &meshv1alpha1.MeshFederation{ObjectMeta: metav1.ObjectMeta{Name: "merge"},
			Spec: meshv1alpha1.MeshFederationSpec{Mode: meshv1alpha1.FederationBundleMerge, Clusters: []meshv1alpha1.MemberCluster{
				{Name: "istio", Provider: meshv1alpha1.ProviderIstio, Namespace: "istio-merge"},
				{Name: "linkerd", Provider: meshv1alpha1.ProviderLinkerd, Namespace: "linkerd-merge", KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "local-admin"}},
			}}})
		f := e.waitReady(t, "merge")
		want := []string{a.Fingerprint(), b.Fingerprint()}
		if !equalStrings(f.Status.BundleFingerprints, want) {
			t.Fatalf("bundle %v, want %v", f.Status.BundleFingerprints, want)
		}
		fps := func(data []byte) []string {
			cs, err := trust.ParseCerts(data)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range cs {
				out = append(out, trust.Fingerprint(c))
			}
			return out
		}
		s := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "istio-merge", Name: "cacerts"}, s); err != nil {
			t.Fatal(err)
		}
		if !equalStrings(fps(s.Data["root-cert.pem"]), want) || !equalStrings(fps(s.Data["ca-cert.pem"]), want[:1]) || string(s.Data["ca-key.pem"]) != string(a.KeyPEM) {
			t.Fatal("Istio's cacerts does not carry its own CA with the merged bundle")
		}
		cm := &corev1.ConfigMap{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "linkerd-merge", Name: "linkerd-identity-trust-roots"}, cm); err != nil {
			t.Fatal(err)
		}
		if !equalStrings(fps([]byte(cm.Data["ca-bundle.crt"])), want) {
			t.Fatal("Linkerd's trust roots are not the merged bundle")
		}
		iss := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: "linkerd-merge", Name: "linkerd-identity-issuer"}, iss); err != nil || ownership.IsManaged(iss) ||
			string(iss.Data["tls.crt"]) != string(bi.CertPEM) {
			t.Fatalf("Linkerd's own issuer was touched: %v", err)
		}
		// A leaf of either mesh verifies against the bundle both now hold.
		pool := x509.NewCertPool()
		for _, c := range []*trust.CA{a, b} {
			pool.AddCert(c.Cert)
		}
		if _, err := bi.Cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			t.Fatalf("Linkerd issuer against the merged bundle: %v", err)
		}
		if err := e.local.Delete(ctx, f); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("deletion removes nothing distributed", func(t *testing.T) {
		if err := e.local.Delete(ctx, e.get(t, "mesh")); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "federation gone", func() error {
			err := e.local.Get(ctx, client.ObjectKey{Name: "mesh"}, &meshv1alpha1.MeshFederation{})
			if client.IgnoreNotFound(err) != nil || err == nil {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
		time.Sleep(500 * time.Millisecond)
		e.checkAll(t, root, root)
		s := &corev1.Secret{}
		if err := e.local.Get(ctx, client.ObjectKey{Namespace: opNS, Name: meshfederation.CASecretName("mesh")}, s); err != nil {
			t.Fatalf("root state Secret removed: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// setRoleVerbs sets the verbs of the by-name rules of the member's
// meshplane-federation Role.
func setRoleVerbs(t *testing.T, c client.Client, namespace string, verbs ...string) {
	t.Helper()
	role := &rbacv1.Role{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: meshfederation.RemoteRBACName}, role); err != nil {
		t.Fatal(err)
	}
	for i := range role.Rules {
		if len(role.Rules[i].ResourceNames) > 0 {
			role.Rules[i].Verbs = verbs
		}
	}
	if err := c.Update(context.Background(), role); err != nil {
		t.Fatal(err)
	}
}

func equalStrings(a, b []string) bool {
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

// noWatch makes a client.Client a client.WithWatch for the interceptor;
// the reconciler never watches through it.
type noWatch struct{ client.Client }

func (noWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, testenv.Errorf("no watches here")
}

const execKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}}]
`

// startPod creates a Linkerd-meshed pod whose start time is now.
func startPod(t *testing.T, c client.Client, name string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, Labels: map[string]string{"linkerd.io/control-plane-ns": "linkerd"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	mustCreate(t, c, p)
	now := metav1.Now()
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now}
	if err := c.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// restartPod replaces the pod with one that starts after since (status
// times have second precision).
func restartPod(t *testing.T, c client.Client, p *corev1.Pod, since time.Time) {
	t.Helper()
	time.Sleep(time.Until(since.Add(1100 * time.Millisecond)))
	if err := c.Delete(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "pod deleted", func() error {
		err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &corev1.Pod{})
		if client.IgnoreNotFound(err) != nil || err == nil {
			return testenv.Errorf("still there")
		}
		return nil
	})
	*p = *startPod(t, c, p.Name)
}

func badRoot(t *testing.T, kind string) (certPEM, keyPEM []byte) {
	t.Helper()
	root, err := trust.GenerateRoot(trust.RootOptions{CommonName: kind, Lifetime: time.Hour}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if kind == "expired" {
		return root.CertPEM, root.KeyPEM
	}
	if kind == "pathlen0" {
		return pathLenZeroRoot(t, kind)
	}
	// Not a CA: a leaf signed by a fresh root.
	fresh, err := trust.GenerateRoot(trust.RootOptions{CommonName: "issuer"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return leafCert(t, fresh)
}
