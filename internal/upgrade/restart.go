package upgrade

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/ownership"
)

// Restart restarts a Deployment, StatefulSet or DaemonSet by setting
// annotation to value on its pod template (a merge patch with Meshplane's
// field manager). Because the value names the target, setting it again is
// a no-op: restarts are idempotent and resumable. The MeshInstall
// controller restarts onto a data plane (DataPlaneAnnotation); the
// ZeroTrustPolicy controller onto a policy (rolloutRestart).
func Restart(ctx context.Context, c client.Writer, ns, kind, name, annotation, value string) error {
	var obj client.Object
	switch kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	default:
		return fmt.Errorf("cannot restart %s", kind)
	}
	obj.SetNamespace(ns)
	obj.SetName(name)
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{annotation: value}}}}})
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ownership.FieldManager)); err != nil {
		return fmt.Errorf("restarting %s %s/%s: %w", kind, ns, name, client.IgnoreNotFound(err))
	}
	return nil
}
