package incident

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// NamespaceAnnotation marks a namespace a BreakGlass covers; its value is
// the BreakGlass's name. The BreakGlass controller sets it (recorded like
// every other field it changes) before it detaches anything in the
// namespace and removes it last on restore. The other controllers read it
// instead of re-evaluating the BreakGlass's scope, because detaching
// injection removes the very labels a namespace selector or mesh discovery
// would match on.
const NamespaceAnnotation = "meshplane.io/break-glass"

// Active reports whether bg still holds what it changed: it exists and has
// not finished restoring. A BreakGlass being deleted is active until its
// restore is complete.
func Active(bg *meshv1alpha1.BreakGlass) bool {
	return bg != nil && bg.Status.Phase != meshv1alpha1.BreakGlassRestored
}

// PinsTraffic reports whether bg pins TrafficSplits and Canaries to their
// stable backend or primary.
func PinsTraffic(bg *meshv1alpha1.BreakGlass) bool {
	return Active(bg) && on(bg.Spec.Actions.PinTraffic)
}

// RelaxesPolicies reports whether bg relaxes mTLS and default-deny.
func RelaxesPolicies(bg *meshv1alpha1.BreakGlass) bool {
	return Active(bg) && on(bg.Spec.Actions.RelaxPolicies)
}

// DetachesInjection reports whether bg detaches sidecar injection.
func DetachesInjection(bg *meshv1alpha1.BreakGlass) bool {
	return Active(bg) && on(bg.Spec.Actions.DetachInjection)
}

// on reads an action that defaults to true.
func on(b *bool) bool { return b == nil || *b }

// ForNamespace returns the active BreakGlass covering namespace, or nil.
func ForNamespace(ctx context.Context, c client.Reader, namespace string) (*meshv1alpha1.BreakGlass, error) {
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading namespace %s for break-glass coverage: %w", namespace, err)
	}
	name := ns.Annotations[NamespaceAnnotation]
	if name == "" {
		return nil, nil
	}
	var bg meshv1alpha1.BreakGlass
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &bg); err != nil {
		if apierrors.IsNotFound(err) {
			// The annotation outlived its BreakGlass (removed by hand
			// mid-restore); nothing holds the namespace any more.
			return nil, nil
		}
		return nil, fmt.Errorf("reading BreakGlass %s: %w", name, err)
	}
	if !Active(&bg) {
		return nil, nil
	}
	return &bg, nil
}

// ForMeshInstall returns an active BreakGlass that targets mi, by reference
// or by provider, or nil. When several do, the oldest is returned.
func ForMeshInstall(ctx context.Context, c client.Reader, mi *meshv1alpha1.MeshInstall) (*meshv1alpha1.BreakGlass, error) {
	var list meshv1alpha1.BreakGlassList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing BreakGlasses: %w", err)
	}
	var found *meshv1alpha1.BreakGlass
	for i := range list.Items {
		bg := &list.Items[i]
		if !Active(bg) || !Targets(bg, mi) {
			continue
		}
		if found == nil || bg.CreationTimestamp.Before(&found.CreationTimestamp) {
			found = bg
		}
	}
	return found, nil
}

// Targets reports whether bg's target is mi: named by reference, or by the
// provider mi installs.
func Targets(bg *meshv1alpha1.BreakGlass, mi *meshv1alpha1.MeshInstall) bool {
	t := bg.Spec.Target
	if t.MeshInstallRef != nil {
		return t.MeshInstallRef.Name == mi.Name
	}
	return t.Provider != "" && t.Provider == mi.Spec.Provider
}

// Message is the text the other controllers put in their BreakGlassActive
// condition.
func Message(bg *meshv1alpha1.BreakGlass) string {
	return fmt.Sprintf("BreakGlass %s is active (%s); fields it relaxed are not re-applied until it is deleted and restored", bg.Name, bg.Spec.Reason)
}
