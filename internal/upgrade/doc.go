// Package upgrade holds the pure decisions of a data-plane migration: which
// namespaces still have to move, in which batches, whether a batch passed
// its health gate, and which namespaces and pods still use a control-plane
// revision. The MeshInstall and MeshRevision controllers read the cluster,
// call these functions, and write what they decide; the state of a
// migration is always recomputed from the cluster (namespace labels and the
// pod-template annotation DataPlaneAnnotation), so it resumes exactly after
// an operator restart. Workload health (WorkloadReady) is kstatus's
// (fluxcd/cli-utils): the same rules as Helm's and Flux's waiters.
package upgrade
