package hostile

import (
	"fmt"
	"strings"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

// ResiliencePolicy composition and rate-limit cases: the CEL rules of the
// per-route and global rate limits, their refusals on Linkerd and Cilium,
// and a policy composed with a TrafficSplit or a Canary: one VirtualService
// per host at every moment (watched), owned by both, the right one left
// whichever goes first, a Conflict on the same field, and a foreign object
// pointing at the policy left alone.

// rateLimited is goodResiliencePolicy with a local rate limit.
func rateLimited(ns, name string, m Mesh) *meshv1alpha1.ResiliencePolicy {
	rp := goodResiliencePolicy(ns, name, m)
	rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 10, Interval: metav1.Duration{Duration: time.Second}}}
	return rp
}

// globalLimit is a valid global rate limit.
func globalLimit() *meshv1alpha1.GlobalRateLimit {
	return &meshv1alpha1.GlobalRateLimit{Service: meshv1alpha1.RateLimitService{Name: "ratelimit", Port: 8081}, Domain: "shop",
		Descriptors: []meshv1alpha1.RateLimitDescriptor{{Key: "PATH", Path: true}}}
}

// rateLimitEdits are rate limits the API server refuses, with its message.
var rateLimitEdits = []struct {
	name string
	edit func(*meshv1alpha1.ResiliencePolicy)
	want []string
}{
	{"pathPrefix without a leading slash", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.RateLimit.Local.PathPrefix = "api" },
		[]string{"pathPrefix must start with / and hold no query (?) or fragment (#), e.g. /api"}},
	{"pathPrefix with a query", func(rp *meshv1alpha1.ResiliencePolicy) { rp.Spec.RateLimit.Local.PathPrefix = "/api?debug=1" },
		[]string{"pathPrefix must start with / and hold no query (?) or fragment (#), e.g. /api"}},
	{"pathPrefix of 257 characters", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Local.PathPrefix = "/" + strings.Repeat("a", 256)
	},
		[]string{"spec.rateLimit.local.pathPrefix", "may not be more than 256 bytes"}},
	{"global descriptor with a header and a value", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Descriptors[0] = meshv1alpha1.RateLimitDescriptor{Key: "user", Header: "X-User", Value: "x"}
	}, []string{"a descriptor takes its value from exactly one of header, path (true) or value"}},
	{"global descriptor without a source", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Descriptors[0] = meshv1alpha1.RateLimitDescriptor{Key: "user"}
	}, []string{"a descriptor takes its value from exactly one of header, path (true) or value"}},
	{"global without descriptors", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Descriptors = nil
	}, []string{"spec.rateLimit.global.descriptors", "Required value"}},
	{"global with 9 descriptors", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		for i := range 8 {
			rp.Spec.RateLimit.Global.Descriptors = append(rp.Spec.RateLimit.Global.Descriptors, meshv1alpha1.RateLimitDescriptor{Key: fmt.Sprintf("k%d", i), Value: "v"})
		}
	}, []string{"spec.rateLimit.global.descriptors", "must have at most 8 items"}},
	{"global timeout 1m", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Timeout = &metav1.Duration{Duration: time.Minute}
	}, []string{"timeout must be between 1ms and 10s; got 1m0s"}},
	{"global service port 0", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Service.Port = 0
	}, []string{"spec.rateLimit.global.service.port", "should be greater than or equal to 1"}},
	{"global service name with a namespace", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Service.Name = "infra/ratelimit"
	}, []string{"spec.rateLimit.global.service.name", "should match"}},
	{"global domain with a space", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Domain = "my shop"
	}, []string{"spec.rateLimit.global.domain", "should match"}},
	{"global descriptor header :path", func(rp *meshv1alpha1.ResiliencePolicy) {
		rp.Spec.RateLimit.Global = globalLimit()
		rp.Spec.RateLimit.Global.Descriptors[0] = meshv1alpha1.RateLimitDescriptor{Key: "PATH", Header: ":path"}
	}, []string{"spec.rateLimit.global.descriptors[0].header", "should match"}},
}

func init() {
	for _, e := range rateLimitEdits {
		Register(Case{Category: "spec", Kind: "ResiliencePolicy", Mesh: Istio, Name: "create rate limit " + e.name,
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := rateLimited(ns, "bad", Istio)
				e.edit(rp)
				h.Refused(rp, e.want...)
				sameOutputs(h, ns, before, outs)
			}})
	}
	Register(Case{Category: "refused-update", Kind: "ResiliencePolicy", Mesh: Istio, Name: "update adds a global descriptor with two sources",
		Run: func(h *H) {
			ns := h.Namespace(Istio)
			h.Service(ns, "web")
			rp := rateLimited(ns, "rl", Istio)
			h.Create(rp)
			h.Ready(rp)
			before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
			e := rateLimitEdits[3]
			h.Rejected(h.Update(rp, func() { e.edit(rp) }), e.want...)
			sameOutputs(h, ns, before, outs)
		}})
	Register(rateLimitCapabilityCases()...)
	Register(composeCases()...)
}

func rateLimitCapabilityCases() []Case {
	return []Case{
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "global rate limit on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				h.Service(ns, "web")
				rp := rateLimited(ns, "global", Linkerd)
				rp.Spec.RateLimit.Global = globalLimit()
				refusedWhole(h, Linkerd, ns, rp, "rateLimit.global: Linkerd has no global rate limiting (HTTPLocalRateLimitPolicy limits each proxy on its own); use rateLimit.local")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Linkerd, Name: "per-route local rate limit on Linkerd",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				h.Service(ns, "web")
				rp := rateLimited(ns, "path", Linkerd)
				rp.Spec.RateLimit.Local.PathPrefix = "/api"
				refusedWhole(h, Linkerd, ns, rp, "rateLimit.local.pathPrefix: Linkerd's HTTPLocalRateLimitPolicy limits a whole Server, not a path; drop rateLimit.local.pathPrefix")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Cilium, Name: "global rate limit on Cilium",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				h.Service(ns, "web")
				rp := rateLimited(ns, "global", Cilium)
				rp.Spec.RateLimit.Global = globalLimit()
				refusedWhole(h, Cilium, ns, rp, "rateLimit.global: Cilium documents no global rate limiting, and Meshplane does not wire an external rate-limit service into Cilium's Envoy; use rateLimit.local")
			}},
		{Category: "capability", Kind: "ResiliencePolicy", Mesh: Istio, Name: "global rate limit in an ambient namespace",
			Run: func(h *H) {
				ns := ambientNamespace(h)
				h.Service(ns, "web")
				rp := rateLimited(ns, "global", Istio)
				rp.Spec.Retries, rp.Spec.OutlierDetection = nil, nil
				rp.Spec.RateLimit.Global = globalLimit()
				refusedWhole(h, Istio, ns, rp, "rateLimit.global: namespace "+ns+" is ambient and no waypoint serves it")
			}},
		{Category: "silent-drop", Kind: "ResiliencePolicy", Mesh: Istio, Name: "global and per-route limits land in one EnvoyFilter",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				rp := rateLimited(ns, "rl", Istio)
				rp.Spec.RateLimit.Local.PathPrefix = "/api"
				rp.Spec.RateLimit.Global = globalLimit()
				h.Create(rp)
				h.Ready(rp)
				outs := resilienceOutputs(h, ns)
				if _, ok := outs["EnvoyFilter/rl-ratelimit"]; !ok {
					h.Fatalf("outputs %v: no EnvoyFilter rl-ratelimit", outs)
				}
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
				for _, f := range []string{"rateLimit.local.pathPrefix", "rateLimit.global"} {
					if got := supportOf(rp, f, meshv1alpha1.ProviderIstio); got != meshv1alpha1.FieldEnforced {
						h.Fatalf("support of %s on Istio: %q", f, got)
					}
				}
			}},
	}
}

func supportOf(rp *meshv1alpha1.ResiliencePolicy, field string, p meshv1alpha1.Provider) meshv1alpha1.FieldSupportState {
	for _, s := range rp.Status.Support {
		if s.Field == field && s.Provider == p {
			return s.State
		}
	}
	return ""
}

// routesFor renders the namespace's VirtualServices for host web with
// their owner references: "name[Kind/name*,Kind/name]" (* = controller).
func routesFor(h *H, ns string) string {
	h.Helper()
	var list istionetworking.VirtualServiceList
	h.Must(h.C.List(h.Ctx, &list, client.InNamespace(ns)))
	var out []string
	for _, vs := range list.Items {
		if len(vs.Spec.Hosts) == 0 || vs.Spec.Hosts[0] != "web" {
			continue
		}
		var refs []string
		for _, r := range vs.OwnerReferences {
			s := r.Kind + "/" + r.Name
			if r.Controller != nil && *r.Controller {
				s += "*"
			}
			refs = append(refs, s)
		}
		out = append(out, vs.Name+"["+strings.Join(refs, ",")+"]")
	}
	return strings.Join(out, " ")
}

func (h *H) routesAre(ns, want string) {
	h.Helper()
	h.Eventually("VirtualServices "+want, func() error {
		if got := routesFor(h, ns); got != want {
			return fmt.Errorf("VirtualServices for web: %q", got)
		}
		return nil
	})
}

// oneAtATime fails when the watch saw two VirtualServices for web at once.
func oneAtATime(h *H, rw *testenv.RouteWatch) {
	h.Helper()
	if n, seen := rw.Max(); n > 1 {
		h.Fatalf("%d VirtualServices for web at once (in order %v)", n, seen)
	}
}

// readyCanary creates Deployment web and a Canary of it in ns and waits
// until the Canary is Initialized and Ready (the test plays the
// Deployment controller).
func readyCanary(h *H, ns string, mod func(*meshv1alpha1.Canary)) *meshv1alpha1.Canary {
	h.Helper()
	h.Create(targetDeployment(ns, "web"))
	cn := GoodCanary(ns, "web", Istio)
	if mod != nil {
		mod(cn)
	}
	h.Create(cn)
	h.Eventually("Canary Initialized", func() error {
		testenv.MarkAvailable(h.T, h.C, ns)
		if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(cn), cn); err != nil {
			return err
		}
		if cn.Status.Phase != meshv1alpha1.CanaryPhaseInitialized || cn.Status.ObservedGeneration != cn.Generation {
			return fmt.Errorf("phase %q", cn.Status.Phase)
		}
		return nil
	})
	return cn
}

func composeCases() []Case {
	return []Case{
		{Category: "composition", Kind: "ResiliencePolicy", Mesh: Istio, Name: "split after a policy with its own route: never two, owned by both",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				rw := testenv.WatchRoutes(h.T, h.Cfg, ns, "web")
				rp := goodResiliencePolicy(ns, "resilience", Istio)
				h.Create(rp)
				h.Ready(rp)
				h.routesAre(ns, "resilience[ResiliencePolicy/resilience*]")
				ts := GoodTrafficSplit(ns, "split", Istio)
				h.Create(ts)
				h.Ready(ts)
				h.routesAre(ns, "split[TrafficSplit/split*,ResiliencePolicy/resilience]")
				h.Ready(rp)
				oneAtATime(h, rw)
			}},
		{Category: "deletion", Kind: "ResiliencePolicy", Mesh: Istio, Name: "split deleted first: the policy's own route comes back, never two",
			Run: func(h *H) {
				ts, ns := readySplit(h, Istio)
				rp := goodResiliencePolicy(ns, "resilience", Istio)
				h.Create(rp)
				h.routesAre(ns, "split[TrafficSplit/split*,ResiliencePolicy/resilience]")
				rw := testenv.WatchRoutes(h.T, h.Cfg, ns, "web")
				h.Must(h.C.Delete(h.Ctx, ts))
				h.routesAre(ns, "resilience[ResiliencePolicy/resilience*]")
				h.Ready(rp)
				oneAtATime(h, rw)
			}},
		{Category: "deletion", Kind: "ResiliencePolicy", Mesh: Istio, Name: "policy deleted first: the split's route keeps only the split",
			Run: func(h *H) {
				ts, ns := readySplit(h, Istio)
				rp := goodResiliencePolicy(ns, "resilience", Istio)
				h.Create(rp)
				h.routesAre(ns, "split[TrafficSplit/split*,ResiliencePolicy/resilience]")
				h.Must(h.C.Delete(h.Ctx, rp))
				h.routesAre(ns, "split[TrafficSplit/split*]")
				h.Eventually("the split's route without retries", func() error {
					vs := &istionetworking.VirtualService{}
					h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: ts.Name}, vs))
					for _, hr := range vs.Spec.Http {
						if hr.Retries != nil {
							return fmt.Errorf("route %s still retries", hr.Name)
						}
					}
					return nil
				})
				h.Ready(ts)
			}},
		{Category: "composition", Kind: "ResiliencePolicy", Mesh: Istio, Name: "Canary route carries the policy, owned by both",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				rw := testenv.WatchRoutes(h.T, h.Cfg, ns, "web")
				cn := readyCanary(h, ns, nil)
				rp := goodResiliencePolicy(ns, "resilience", Istio)
				h.Create(rp)
				h.Ready(rp)
				h.routesAre(ns, "web[Canary/web*,ResiliencePolicy/resilience]")
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
				if rp.Status.ComposedWith != cn.Name {
					h.Fatalf("composedWith %q", rp.Status.ComposedWith)
				}
				oneAtATime(h, rw)
			}},
		{Category: "conflict", Kind: "ResiliencePolicy", Mesh: Istio, Name: "policy sets retries a Canary already sets",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				readyCanary(h, ns, func(cn *meshv1alpha1.Canary) { cn.Spec.Service.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2} })
				before, outs := h.Inventory(ns), resilienceOutputs(h, ns)
				rp := goodResiliencePolicy(ns, "late", Istio)
				h.Create(rp)
				h.Stalled(rp, meshv1alpha1.ConflictReason, "Canary web routes Service web and already sets [retries (TrafficSplit spec.retries, ResiliencePolicy spec.retries)]")
				delete(before, "ResiliencePolicy/late")
				sameOutputs(h, ns, before, outs)
			}},
		{Category: "conflict", Kind: "Canary", Mesh: Istio, Name: "Canary sets retries a policy already sets",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				rp := goodResiliencePolicy(ns, "early", Istio)
				h.Create(rp)
				target := targetDeployment(ns, "web")
				h.Create(target)
				before, snap := h.Inventory(ns), h.Snapshot(target)
				cn := GoodCanary(ns, "web", Istio)
				cn.Spec.Service.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2}
				h.Create(cn)
				h.Stalled(cn, meshv1alpha1.ConflictReason, "ResiliencePolicy early already sets [retries (TrafficSplit spec.retries, ResiliencePolicy spec.retries)] for Service web")
				// Nothing created: no Service, primary or route.
				h.Same(ns, before)
				h.Unchanged(snap)
				if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
					h.Fatalf("primary Deployment of a Conflict Canary: %v", err)
				}
			}},
		{Category: "foreign", Kind: "ResiliencePolicy", Mesh: Istio, Name: "foreign VirtualService pointing at the policy is left alone",
			Run: func(h *H) {
				ns := h.Namespace(Istio)
				h.Service(ns, "web")
				rp := goodResiliencePolicy(ns, "resilience", Istio)
				rp.Spec.Retries = nil
				h.Create(rp)
				h.Ready(rp)
				h.Must(h.C.Get(h.Ctx, client.ObjectKeyFromObject(rp), rp))
				// A user's route for another host, owned (for garbage
				// collection) by the policy and labelled as a split's.
				foreign := &istionetworking.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: ns,
					Labels:          map[string]string{ownership.OwnerLabel: ownership.OwnerValue("TrafficSplit", ns, "gone")},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "ResiliencePolicy", Name: rp.Name, UID: rp.UID}}}}
				foreign.Spec.Hosts = []string{"elsewhere"}
				h.Create(foreign)
				snap := h.Snapshot(foreign)
				// Route fields make the policy look for composed routes.
				h.Must(h.Update(rp, func() {
					rp.Spec.Retries = &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 2}}
				}))
				h.Ready(rp)
				h.Unchanged(snap)
				if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(foreign), &istionetworking.VirtualService{}); apierrors.IsNotFound(err) {
					h.Fatalf("foreign VirtualService deleted")
				}
			}},
	}
}
