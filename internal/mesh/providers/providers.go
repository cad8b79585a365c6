// Package providers builds the registry of every mesh this Meshplane build
// supports. It is the one place providers are registered: nothing
// registers itself from an init function, so what the operator can drive
// is visible here.
package providers

import (
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/cilium"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/mesh/linkerd"
)

// Registry returns a registry holding Istio, Linkerd and Cilium.
func Registry() *mesh.Registry {
	r, err := mesh.NewRegistry(istio.New(), linkerd.New(), cilium.New())
	if err != nil {
		// The list above is static; an error is a programming mistake.
		panic(err)
	}
	return r
}
