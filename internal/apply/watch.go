package apply

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Served returns the objects whose kinds the API server serves, so a
// controller watches (Owns) only output kinds whose CRDs are installed: a
// watch on a missing CRD would stop the manager. A CRD installed later
// needs a manager restart to be watched.
func Served(mapper meta.RESTMapper, scheme *runtime.Scheme, objs ...client.Object) []client.Object {
	var out []client.Object
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			continue
		}
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			out = append(out, o)
		}
	}
	return out
}
