package meshinstall

import (
	"context"
	"fmt"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// adoptionRecheck is how often an upgrade held by an adoption wave looks
// again, besides the MeshAdoption watch.
const adoptionRecheck = 10 * time.Second

// waitForAdoption holds an upgrade that has not started while a
// MeshAdoption wave that targets mi is enrolling (labelled, its workloads
// restarting or judged by its health gate): the upgrade would restart the
// same workloads under a changing control plane, and the wave's gate would
// judge the upgrade instead of the enrolment. An upgrade already under way
// goes on; a wave in its audit window does not hold it (its workloads are
// already in the mesh).
func (r *Reconciler) waitForAdoption(ctx context.Context, mi *meshv1alpha1.MeshInstall) error {
	st := mi.Status
	if st.InstalledVersion == "" || st.InstalledVersion == mi.Spec.Version {
		return nil
	}
	if u := st.Upgrade; u != nil && u.ToVersion == mi.Spec.Version {
		return nil
	}
	var list meshv1alpha1.MeshAdoptionList
	if err := r.List(ctx, &list); err != nil {
		return fmt.Errorf("listing MeshAdoptions: %w", err)
	}
	for _, ma := range list.Items {
		if ma.Spec.MeshInstallRef.Name != mi.Name {
			continue
		}
		w := wavesInFlight(&ma)
		if w == nil {
			continue
		}
		return outcome.Wait(meshv1alpha1.AdoptionInProgressReason, adoptionRecheck,
			"upgrade %s → %s waits for MeshAdoption %s: wave %d %v is enrolling into this mesh; it starts once the wave passed its health gate or was moved back (or set the adoption's spec.paused and wait for the wave to finish)",
			st.InstalledVersion, mi.Spec.Version, ma.Name, w.Index, w.Namespaces)
	}
	return nil
}

// wavesInFlight returns the adoption's enrolling wave, or nil.
func wavesInFlight(ma *meshv1alpha1.MeshAdoption) *meshv1alpha1.AdoptionWaveStatus {
	if n := len(ma.Status.Waves); n > 0 && ma.Status.Waves[n-1].Phase == meshv1alpha1.WaveEnrolling {
		return &ma.Status.Waves[n-1]
	}
	return nil
}
