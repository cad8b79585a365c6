// Package status holds what every Meshplane controller does with its
// object's status: the kstatus conditions (Ready, Reconciling, Stalled)
// derived from a reconcile's outcome, and a Patcher that writes only what
// changed.
//
// The Patcher sends metadata (labels, annotations, finalizers) in one merge
// patch and the whole status in one merge patch of the status subresource.
// Fluxcd's patch helper writes conditions and the other status fields in
// separate requests, so a reader could briefly see Ready=True next to stale
// fields; one patch per subresource avoids that. Nothing is sent when the
// object did not change, which is what makes a no-op reconcile write-free.
package status
