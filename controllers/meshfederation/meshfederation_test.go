package meshfederation_test

import (
	"context"
	"crypto/x509"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/trust"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/testenv"
)

const opNS = "meshplane-system"

// env is the three-cluster federation fixture: local and east run Istio,
// west runs Linkerd; east and west are reached through kubeconfig Secrets
// holding ServiceAccount tokens bound to RemoteRBAC, via TCP proxies.
type env struct {
	local, east, west    client.Client
	localCfg, eastCfg    *cluster.Server
	istio, linkerd       mesh.TrustTarget
	eastProxy, westProxy *tcpProxy
	members              map[string]client.Client
	targets              map[string]mesh.TrustTarget
}

func setup(t *testing.T) *env {
	multi := cluster.UseMulti(t, 3, cluster.EnvtestOptions{CRDs: cluster.CRDOptions{NoThirdParty: true}})
	reg := providers.Registry()
	iw, _ := reg.FederationTrust(meshv1alpha1.ProviderIstio)
	lw, _ := reg.FederationTrust(meshv1alpha1.ProviderLinkerd)
	e := &env{localCfg: multi.Servers[0], eastCfg: multi.Servers[1], istio: iw.TrustTarget(""), linkerd: lw.TrustTarget("")}
	e.local, e.east, e.west = testenv.NewClient(t, multi.Servers[0].Config), testenv.NewClient(t, multi.Servers[1].Config), testenv.NewClient(t, multi.Servers[2].Config)
	mustCreate(t, e.local, ns(opNS), ns("istio-system"))
	mustCreate(t, e.east, ns("istio-system"))
	mustCreate(t, e.west, ns("linkerd"))
	e.eastProxy = newProxy(t, hostPort(t, multi.Servers[1].Config))
	e.westProxy = newProxy(t, hostPort(t, multi.Servers[2].Config))
	eastKC := remoteKubeconfig(t, multi.Servers[1].Config, iw, e.eastProxy.addr)
	westKC := remoteKubeconfig(t, multi.Servers[2].Config, lw, e.westProxy.addr)
	mustCreate(t, e.local,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "east-kubeconfig"}, Data: map[string][]byte{"kubeconfig": eastKC}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "west-kubeconfig"}, Data: map[string][]byte{"kubeconfig": westKC}})
	e.members = map[string]client.Client{"local": e.local, "east": e.east, "west": e.west}
	e.targets = map[string]mesh.TrustTarget{"local": e.istio, "east": e.istio, "west": e.linkerd}

	startFederationManager(t, multi.Servers[0].Config)
	return e
}

func federation(name string) *meshv1alpha1.MeshFederation {
	return &meshv1alpha1.MeshFederation{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshFederationSpec{
			Root: &meshv1alpha1.RootCA{Generate: &meshv1alpha1.GeneratedRoot{}},
			Clusters: []meshv1alpha1.MemberCluster{
				{Name: "local", Provider: meshv1alpha1.ProviderIstio},
				{Name: "east", Provider: meshv1alpha1.ProviderIstio, KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "east-kubeconfig"}},
				{Name: "west", Provider: meshv1alpha1.ProviderLinkerd, KubeconfigSecretRef: &meshv1alpha1.SecretKeyReference{Name: "west-kubeconfig"}},
			},
			Rotation: &meshv1alpha1.RotationSpec{MinPhaseWait: &metav1.Duration{}},
		},
	}
}

// material is what a member holds: its bundle and its intermediate.
type material struct {
	bundle []*x509.Certificate
	issuer *x509.Certificate
	rv     string
}

// read returns a member's material. Linkerd's bundle and issuer live in
// two objects; the Secret is read before and after the ConfigMap, and the
// pair counts only when the Secret did not change in between, so the pair
// is a state the cluster really was in.
func (e *env) read(ctx context.Context, name string) (*material, error) {
	c, t := e.members[name], e.targets[name]
	for range 20 {
		s1 := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.IssuerSecret}, s1); err != nil {
			return nil, err
		}
		m := &material{rv: s1.ResourceVersion}
		iss, err := trust.ParseCerts(s1.Data[t.CertKey])
		if err != nil {
			return nil, err
		}
		m.issuer = iss[0]
		if t.BundleConfigMap == "" {
			m.bundle, err = trust.ParseCerts(s1.Data[t.RootKey])
			return m, err
		}
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.BundleConfigMap}, cm); err != nil {
			return nil, err
		}
		s2 := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.IssuerSecret}, s2); err != nil {
			return nil, err
		}
		if s2.ResourceVersion != s1.ResourceVersion {
			continue
		}
		m.bundle, err = trust.ParseCerts([]byte(cm.Data[t.BundleConfigMapKey]))
		return m, err
	}
	return nil, testenv.Errorf("%s: issuer Secret kept changing", name)
}

// safetyWatcher checks, as often as it can, that every member's bundle
// holds the root that signed its current intermediate.
type safetyWatcher struct {
	stop       chan struct{}
	done       chan struct{}
	checks     atomic.Int64
	mu         sync.Mutex
	violations []string
}

func (e *env) watchSafety() *safetyWatcher {
	w := &safetyWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ctx := context.Background()
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			for _, name := range []string{"local", "east", "west"} {
				m, err := e.read(ctx, name)
				if err != nil {
					continue // not written yet, or the member is cut off
				}
				w.checks.Add(1)
				if _, err := trust.IssuerOf(m.issuer, m.bundle); err != nil {
					w.mu.Lock()
					w.violations = append(w.violations, name+": "+err.Error())
					w.mu.Unlock()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

func (w *safetyWatcher) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if len(w.violations) > 0 {
		t.Fatalf("a bundle lacked the root of its cluster's intermediate %d times, first: %s", len(w.violations), w.violations[0])
	}
	t.Logf("safety watcher: %d observations, every bundle held its intermediate's root", w.checks.Load())
}

// phaseRecorder records every rotation phase the API server stores, from a
// watch (no polling gaps).
type phaseRecorder struct {
	mu     sync.Mutex
	phases []meshv1alpha1.RotationPhase
	stop   func()
}

func (e *env) recordPhases(t *testing.T, name string) *phaseRecorder {
	t.Helper()
	wc, err := client.NewWithWatch(e.localCfg.Config, client.Options{Scheme: e.local.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wi, err := wc.Watch(ctx, &meshv1alpha1.MeshFederationList{})
	if err != nil {
		t.Fatal(err)
	}
	p := &phaseRecorder{}
	done := make(chan struct{})
	p.stop = func() { cancel(); wi.Stop(); <-done }
	go func() {
		defer close(done)
		for ev := range wi.ResultChan() {
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				continue
			}
			f, ok := ev.Object.(*meshv1alpha1.MeshFederation)
			if !ok || f.Name != name || f.Status.Rotation == nil {
				continue
			}
			p.mu.Lock()
			if n := len(p.phases); n == 0 || p.phases[n-1] != f.Status.Rotation.Phase {
				p.phases = append(p.phases, f.Status.Rotation.Phase)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// settle waits until the watch delivered the phase the test last read, so
// stopping the recorder does not drop the final transition.
func (p *phaseRecorder) settle(t *testing.T, last meshv1alpha1.RotationPhase) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the phase recorder sees "+string(last), func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if n := len(p.phases); n == 0 || p.phases[n-1] != last {
			return testenv.Errorf("recorded %v", p.phases)
		}
		return nil
	})
}

// get returns the phases seen, without the state of the previous rotation
// that the watch reports first.
func (p *phaseRecorder) get() []meshv1alpha1.RotationPhase {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.phases)
	for len(out) > 0 && (out[0] == meshv1alpha1.RotationCompleted || out[0] == meshv1alpha1.RotationIdle) {
		out = out[1:]
	}
	return out
}

func (e *env) get(t *testing.T, name string) *meshv1alpha1.MeshFederation {
	t.Helper()
	f := &meshv1alpha1.MeshFederation{}
	if err := e.local.Get(context.Background(), client.ObjectKey{Name: name}, f); err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *env) update(t *testing.T, name string, mutate func(*meshv1alpha1.MeshFederation)) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "update "+name, func() error {
		f := e.get(t, name)
		mutate(f)
		return e.local.Update(context.Background(), f)
	})
}

// waitPhase waits until the rotation of trigger is in phase.
func (e *env) waitPhase(t *testing.T, name, trigger string, phase meshv1alpha1.RotationPhase, timeout time.Duration) *meshv1alpha1.MeshFederation {
	t.Helper()
	var f *meshv1alpha1.MeshFederation
	testenv.Eventually(t, timeout, "phase "+string(phase), func() error {
		f = e.get(t, name)
		if f.Status.Rotation == nil || f.Status.Rotation.Trigger != trigger || f.Status.Rotation.Phase != phase {
			return testenv.Errorf("rotation %+v; conditions %+v", f.Status.Rotation, f.Status.Conditions)
		}
		return nil
	})
	return f
}

func (e *env) waitReady(t *testing.T, name string) *meshv1alpha1.MeshFederation {
	t.Helper()
	var f *meshv1alpha1.MeshFederation
	testenv.Eventually(t, 60*time.Second, name+" Ready", func() error {
		f = e.get(t, name)
		c := apimeta.FindStatusCondition(f.Status.Conditions, meshv1alpha1.ReadyCondition)
		if c == nil || c.Status != metav1.ConditionTrue || f.Status.ObservedGeneration != f.Generation {
			return testenv.Errorf("conditions %+v clusters %+v", f.Status.Conditions, f.Status.Clusters)
		}
		return nil
	})
	return f
}

// checkAll asserts every member holds an intermediate signed by root and a
// bundle of exactly want.
func (e *env) checkAll(t *testing.T, root string, want ...string) {
	t.Helper()
	for _, name := range []string{"local", "east", "west"} {
		m, err := e.read(context.Background(), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, c := range m.bundle {
			got = append(got, trust.Fingerprint(c))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: bundle %v, want %v", name, got, want)
		}
		r, err := trust.IssuerOf(m.issuer, m.bundle)
		if err != nil || trust.Fingerprint(r) != root {
			t.Fatalf("%s: intermediate not signed by %s: %v", name, root, err)
		}
	}
}

func memberCondition(f *meshv1alpha1.MeshFederation, member, typ string) *metav1.Condition {
	for _, c := range f.Status.Clusters {
		if c.Name == member {
			return apimeta.FindStatusCondition(c.Conditions, typ)
		}
	}
	return nil
}

// startFederationManager starts a manager with the MeshFederation
// controller on cfg, with short remote timeouts and polls.
func startFederationManager(t *testing.T, cfg *rest.Config) {
	t.Helper()
	testenv.StartManager(t, cfg, testenv.ManagerOptions{Options: manager.Options{OperatorNamespace: opNS}},
		func(mgr *manager.Manager) error {
			r, err := meshfederation.New(mgr)
			if err != nil {
				return err
			}
			r.Remote.Timeout, r.PollInterval = 2*time.Second, 100*time.Millisecond
			return r.SetupWithManager(mgr)
		})
}
