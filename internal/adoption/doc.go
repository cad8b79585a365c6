// Package adoption holds the pure decisions of a MeshAdoption: which
// namespaces are still outside the data plane, which form the next wave,
// what a namespace's labels and annotations become when it is enrolled and
// when it is moved back, and whether a wave passed its health gate.
//
// The state is always recomputed from the cluster: a namespace is enrolled
// when its labels and annotations say so (mesh.Enrolment), and the labels
// and annotations a MeshAdoption changed carry their prior values in the
// namespace annotation PriorAnnotation, written in the same patch as the
// change. Moving a wave back restores exactly those values, and only where
// the value is still the one Meshplane set: someone's later edit wins.
// Workloads are restarted by stamping upgrade.DataPlaneAnnotation on their
// pod templates, so a restart is idempotent and resumable.
//
// # Trade-offs
//
//   - A namespace already in the data plane (labelled by hand) counts as
//     enrolled and is neither relabelled nor restarted.
//   - The health gate is the upgrade's (upgrade.CheckBatch: kstatus
//     readiness of every restarted workload), not traffic: a workload that
//     is Ready but misbehaves under the mesh passes.
//   - Moving a wave back restarts its workloads out of the mesh but does
//     not wait for them: the adoption is held either way, and the wave's
//     status names the restart.
package adoption
