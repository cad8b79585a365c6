package outputs

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Alongside adds to objs (the outputs for found, the mesh the namespace's
// labels resolve to) the outputs of the other mesh of a migration in
// progress (mesh.MigratingFromAnnotation, mesh.MigratingToAnnotation):
// translate is the kind's translation for one resolved mesh. An object
// that names its provider (explicit) is not migrated. An output of the
// other mesh with the same kind and name as one of objs (a mesh-neutral
// Gateway API route) is left out: found's wins. All of it goes into the
// one apply of the object (dry run first, one inventory), so the outputs
// of the mesh that is left are pruned by the apply after the migration
// annotations are removed.
func (d *Deps) Alongside(ctx context.Context, ns string, explicit meshv1alpha1.Provider, found discovery.Result, objs []client.Object,
	translate func(discovery.Result) ([]client.Object, error),
) ([]client.Object, error) {
	other, why, ok, err := d.Migrating(ctx, ns, explicit, found)
	if err != nil || !ok {
		return objs, err
	}
	more, err := translate(other)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; the outputs stay as they were", why, err)
	}
	return Beside(objs, more), nil
}

// Migrating resolves the other mesh of a migration in progress in
// namespace ns (see Alongside) for an object resolved to found: ok is
// false when the namespace is not moving, or the object names its
// provider (explicit). why says, for a refusal of the other mesh, what
// asked for its outputs.
func (d *Deps) Migrating(ctx context.Context, ns string, explicit meshv1alpha1.Provider, found discovery.Result) (other discovery.Result, why string, ok bool, err error) {
	if explicit != "" {
		return other, "", false, nil
	}
	var namespace corev1.Namespace
	if err := d.Client.Get(ctx, client.ObjectKey{Name: ns}, &namespace); err != nil {
		return other, "", false, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	p, ok := mesh.Alongside(namespace.Annotations, found.Provider)
	if !ok {
		return other, "", false, nil
	}
	var installs meshv1alpha1.MeshInstallList
	if err := d.Client.List(ctx, &installs); err != nil {
		return other, "", false, fmt.Errorf("listing MeshInstalls: %w", err)
	}
	// The other mesh's refusal keeps its reason (errors.As), with what
	// asked for it.
	why = fmt.Sprintf("namespace %s is moving between meshes (annotations %s=%s, %s=%s), so %s's outputs are written beside %s's",
		ns, mesh.MigratingFromAnnotation, namespace.Annotations[mesh.MigratingFromAnnotation],
		mesh.MigratingToAnnotation, namespace.Annotations[mesh.MigratingToAnnotation], p, found.Provider)
	other, err = discovery.ForProvider(d.Registry, p, &namespace, installs.Items)
	if err != nil {
		return other, why, false, fmt.Errorf("%s: %w; the outputs stay as they were: fix or remove the annotations (a MeshAdoption sets and removes them)", why, err)
	}
	return other, why, true, nil
}

// Beside returns objs followed by each of more whose kind and name none
// of objs has (a mesh-neutral Gateway API route both meshes would write:
// objs' wins).
func Beside(objs, more []client.Object) []client.Object {
	have := map[string]bool{}
	for _, o := range objs {
		have[outputKey(o)] = true
	}
	out := append([]client.Object(nil), objs...)
	for _, o := range more {
		if !have[outputKey(o)] {
			out = append(out, o)
		}
	}
	return out
}

// outputKey is an output's kind (group and kind, or Go type) and name.
func outputKey(o client.Object) string {
	gk := o.GetObjectKind().GroupVersionKind().GroupKind()
	return fmt.Sprintf("%s|%T|%s", gk, o, o.GetName())
}
