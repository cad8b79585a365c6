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
//
// # Audit first, then promotion (spec.waves.audit)
//
// A ZeroTrustPolicy is its team's object, often applied by GitOps. A wave
// in audit therefore never writes a policy's spec: it sets the namespace
// annotation mesh.AuditHoldAnnotation to the adoption's name, and the
// ZeroTrustPolicy controller translates every policy of that namespace in
// Audit (mesh.Effective on a copy) and reports the holder in
// status.auditHeldBy. The namespace is labelled only once every policy of
// it reports the hold, so no pod joins the mesh under a policy that
// enforces. After the health gate the wave audits for the window; the
// mesh's would-be-denials query (mesh.Enrolment.WouldBeDenied, or the
// spec's) runs per namespace at least every 10s. Any count holds the
// adoption (WouldBeDenied) with the policies still in Audit; zero at the
// end of the window promotes: the hold is removed and each policy returns
// to its own spec.enforcement.
//
// The alternative, patching spec.enforcement with a field manager of our
// own and restoring the recorded value, was rejected: a GitOps tool would
// see drift and revert it mid-window (or Meshplane would fight it), and a
// crash between the patch and the record loses the user's value. The
// chosen design costs one namespace annotation and means "promote" is
// "enforce what the spec says": a policy its author set to Audit stays in
// Audit after promotion. Deleting the adoption, or moving a wave back,
// releases its holds, so the policies return to their specs as well.
// A query that fails, is unreachable or returns no number never promotes
// (the built-in queries end in "or vector(0)", so no series is zero).
package adoption
