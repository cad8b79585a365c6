package outputs

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/mesh"
)

// TranslateIn translates an object for the data plane of namespace ns:
// it reads the namespace's facts for translator tr (the resolved mesh's
// translator of the kind), runs translate with them, and then decides
// for the mesh as installed. The translator's own refusal comes first,
// because it names the field; the install-aware decision (the mesh's
// version, its settings, its CRDs) comes after it.
func (d *Deps) TranslateIn(ctx context.Context, ns string, found discovery.Result, tr mesh.Provider,
	translate func(mesh.NamespaceFacts) ([]client.Object, error), required ...mesh.Capability,
) ([]client.Object, error) {
	facts, err := mesh.ReadNamespaceFacts(ctx, d.Client, tr, ns)
	if err != nil {
		return nil, err
	}
	objs, err := translate(facts)
	if err != nil {
		return nil, err
	}
	if _, err := d.Decide(ctx, ns, found, required...); err != nil {
		return nil, err
	}
	return objs, nil
}
