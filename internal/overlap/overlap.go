package overlap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Kinds, as they appear in messages.
const (
	kindTrafficSplit    = "TrafficSplit"
	kindCanary          = "Canary"
	kindZeroTrustPolicy = "ZeroTrustPolicy"
)

// contender is one object in a contest.
type contender struct {
	kind, name string
	created    metav1.Time
	inForce    bool
}

// before orders contenders: in force first, then older, then by kind and
// name.
func before(a, b contender) int {
	if a.inForce != b.inForce {
		if a.inForce {
			return -1
		}
		return 1
	}
	if c := a.created.Compare(b.created.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// inForce reports whether an object's current spec is applied: reconciled
// at its generation, not Stalled, with outputs.
func inForce(obj client.Object, st *meshv1alpha1.CommonStatus, inventory int) bool {
	return inventory > 0 && st.ObservedGeneration == obj.GetGeneration() &&
		!apimeta.IsStatusConditionTrue(st.Conditions, meshv1alpha1.StalledCondition)
}

func contenderOf(kind string, obj client.Object, st *meshv1alpha1.CommonStatus, inventory int) contender {
	return contender{kind: kind, name: obj.GetName(), created: obj.GetCreationTimestamp(), inForce: inForce(obj, st, inventory)}
}

// CanaryService is the Service a Canary routes: spec.service.name, or the
// target's name when unset.
func CanaryService(cn *meshv1alpha1.Canary) string {
	if cn.Spec.Service.Name != "" {
		return cn.Spec.Service.Name
	}
	return cn.Spec.TargetRef.Name
}

// Route returns nil when obj (a TrafficSplit or a Canary) may route its
// Service, or a Conflict naming the TrafficSplit or Canary of the
// namespace that routes the same Service and wins (see the package doc).
func Route(ctx context.Context, c client.Reader, obj client.Object) error {
	self, service, field := routeOf(obj)
	// Read only: the cache's objects are not copied (a namespace of
	// thousands of routes would copy them all on every reconcile).
	var splits meshv1alpha1.TrafficSplitList
	if err := c.List(ctx, &splits, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the namespace's TrafficSplits: %w", err)
	}
	var canaries meshv1alpha1.CanaryList
	if err := c.List(ctx, &canaries, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the namespace's Canaries: %w", err)
	}
	var others []contender
	for i := range splits.Items {
		ts := &splits.Items[i]
		if ts.Spec.Service.Name == service && ts.DeletionTimestamp.IsZero() {
			others = append(others, contenderOf(kindTrafficSplit, ts, &ts.Status.CommonStatus, len(ts.Status.Inventory)))
		}
	}
	for i := range canaries.Items {
		cn := &canaries.Items[i]
		if CanaryService(cn) == service && cn.DeletionTimestamp.IsZero() {
			others = append(others, contenderOf(kindCanary, cn, &cn.Status.CommonStatus, len(cn.Status.Inventory)))
		}
	}
	for _, o := range others {
		if o.kind == self.kind && o.name == self.name {
			continue
		}
		if before(o, self) < 0 {
			return outcome.Conflict("%s %s: Service %s is already routed by %s %s; two routes for one Service would both be applied and the mesh would follow only one of them — "+
				"route another Service, merge the two into one, or delete %s %s (this %s is re-checked when it changes or goes away)",
				field, service, service, o.kind, o.name, o.kind, o.name, self.kind)
		}
	}
	return nil
}

// routeOf returns obj as a contender, the Service it routes and the field
// that names it.
func routeOf(obj client.Object) (contender, string, string) {
	switch o := obj.(type) {
	case *meshv1alpha1.TrafficSplit:
		return contenderOf(kindTrafficSplit, o, &o.Status.CommonStatus, len(o.Status.Inventory)), o.Spec.Service.Name, "spec.service.name"
	case *meshv1alpha1.Canary:
		field := "spec.service.name"
		if o.Spec.Service.Name == "" {
			field = "spec.targetRef.name"
		}
		return contenderOf(kindCanary, o, &o.Status.CommonStatus, len(o.Status.Inventory)), CanaryService(o), field
	}
	panic(fmt.Sprintf("overlap.Route: %T routes no Service", obj))
}

// Policy returns nil when p may apply, or a Conflict naming the
// ZeroTrustPolicy of the namespace that covers some of the same workloads
// with another mTLS mode or default action and wins (see the package
// doc).
func Policy(ctx context.Context, c client.Reader, p *meshv1alpha1.ZeroTrustPolicy) error {
	var list meshv1alpha1.ZeroTrustPolicyList
	if err := c.List(ctx, &list, client.InNamespace(p.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the namespace's ZeroTrustPolicies: %w", err)
	}
	var others []*meshv1alpha1.ZeroTrustPolicy
	for i := range list.Items {
		if o := &list.Items[i]; o.DeletionTimestamp.IsZero() && o.Name != p.Name {
			others = append(others, o)
		}
	}
	all := contenders(p, others)
	c0 := func(o *meshv1alpha1.ZeroTrustPolicy) contender {
		return contenderOf(kindZeroTrustPolicy, o, &o.Status.CommonStatus, len(o.Status.Inventory))
	}
	slices.SortFunc(all, func(a, b *meshv1alpha1.ZeroTrustPolicy) int { return before(c0(a), c0(b)) })
	var won []*meshv1alpha1.ZeroTrustPolicy
	for _, o := range all {
		var by *meshv1alpha1.ZeroTrustPolicy
		for _, w := range won {
			if PoliciesConflict(w, o) {
				by = w
				break
			}
		}
		if o == p {
			if by == nil {
				return nil
			}
			return outcome.Conflict("ZeroTrustPolicy %s (%s, %s) already covers workloads this policy selects (%s, %s); a workload has one mTLS mode and one default action, so the mesh would enforce only one of the two — "+
				"give both the same spec.mtls.mode and spec.defaultAction, make spec.selector disjoint from %s's, or delete one (this policy is re-checked when %s changes or goes away)",
				by.Name, mode(&by.Spec), describe(by.Spec.Selector), mode(&p.Spec), describe(p.Spec.Selector), by.Name, by.Name)
		}
		if by == nil {
			won = append(won, o)
		}
	}
	return nil
}

// contenders returns p and the policies connected to it by conflicts
// (directly or through others). Whether a policy wins depends only on the
// policies that conflict with it, so the contest of p is decided within
// this set, exactly as over the whole namespace, in time linear in the
// namespace's policies when few conflict (a thousand policies compared each
// with each on every reconcile made convergence quadratic).
func contenders(p *meshv1alpha1.ZeroTrustPolicy, others []*meshv1alpha1.ZeroTrustPolicy) []*meshv1alpha1.ZeroTrustPolicy {
	set := []*meshv1alpha1.ZeroTrustPolicy{p}
	for i := 0; i < len(set); i++ {
		rest := others[:0]
		for _, o := range others {
			if PoliciesConflict(set[i], o) {
				set = append(set, o)
			} else {
				rest = append(rest, o)
			}
		}
		others = rest
	}
	return set
}

// PoliciesConflict reports whether a and b may select a common workload
// with a different mTLS mode or default action.
func PoliciesConflict(a, b *meshv1alpha1.ZeroTrustPolicy) bool {
	return mode(&a.Spec) != mode(&b.Spec) && SelectorsOverlap(a.Spec.Selector, b.Spec.Selector)
}

func mode(s *meshv1alpha1.ZeroTrustPolicySpec) string {
	m, a := meshv1alpha1.MTLSStrict, meshv1alpha1.ActionDeny
	if s.MTLS != nil && s.MTLS.Mode != "" {
		m = s.MTLS.Mode
	}
	if s.DefaultAction != "" {
		a = s.DefaultAction
	}
	return "mtls " + string(m) + ", defaultAction " + string(a)
}

func describe(s *metav1.LabelSelector) string {
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		return "the whole namespace"
	}
	return "selector " + metav1.FormatLabelSelector(s)
}

// keyRule is what the requirements of a selector demand of one label key.
type keyRule struct {
	exists, absent bool
	// allowed is nil when any value is allowed.
	allowed  sets.Set[string]
	excluded sets.Set[string]
}

// SelectorsOverlap reports whether some set of labels satisfies both
// selectors (nil or empty: everything). Keys are independent, so this is
// exact: they overlap unless the two demand incompatible things of one key.
// A selector that does not parse overlaps everything.
func SelectorsOverlap(a, b *metav1.LabelSelector) bool {
	ra, okA := requirements(a)
	rb, okB := requirements(b)
	if !okA || !okB {
		return true
	}
	rules := map[string]*keyRule{}
	for _, r := range append(ra, rb...) {
		k := rules[r.Key()]
		if k == nil {
			k = &keyRule{excluded: sets.New[string]()}
			rules[r.Key()] = k
		}
		vals := sets.New(r.ValuesUnsorted()...)
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			k.exists = true
			if k.allowed == nil {
				k.allowed = vals
			} else {
				k.allowed = k.allowed.Intersection(vals)
			}
		case selection.NotEquals, selection.NotIn:
			k.excluded = k.excluded.Union(vals)
		case selection.Exists:
			k.exists = true
		case selection.DoesNotExist:
			k.absent = true
		default:
			return true
		}
	}
	for _, k := range rules {
		if k.exists && k.absent {
			return false
		}
		if k.allowed != nil && k.allowed.Difference(k.excluded).Len() == 0 {
			return false
		}
	}
	return true
}

func requirements(s *metav1.LabelSelector) (labels.Requirements, bool) {
	if s == nil {
		return nil, true
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, false
	}
	reqs, _ := sel.Requirements()
	return reqs, true
}

// Changes passes the events that may change a contest: an object created
// or deleted, its spec changed, or its deletion started.
var Changes = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}
