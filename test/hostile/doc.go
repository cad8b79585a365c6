// Package hostile is the hostile-input suite: cases a careless or hostile
// platform engineer would try, each asserting the whole promise against a
// real kube-apiserver (envtest with the real Meshplane, Istio, Linkerd,
// Cilium and Gateway API CRDs) with every controller running:
//
//   - the exact message: the API server's rejection, or the condition's
//     reason and message (naming field, value and fix);
//   - which objects exist afterwards: nothing new on a refusal, the previous
//     generation intact on a refused update (Inventory, Snapshot);
//   - no foreign object changed (Snapshot before, Unchanged after);
//   - one bad object stops nothing else: another object of the same kind
//     still reconciles (Control).
//
// # Writing cases
//
// Each area keeps its cases in its own file, <area>_test.go, and registers
// them from an init function:
//
//	func init() {
//		Register(Case{Category: "duration", Kind: "Canary", Mesh: Istio,
//			Name: "progressDeadline banana", Run: func(h *H) { ... }})
//	}
//
// TestHostile runs every registered case as a parallel subtest named
// <Kind>/<Mesh>/<Category>/<Name> against one shared API server and one
// manager with every controller (test/harness). A case works in its own
// namespaces (h.Namespace); a case that must restart the manager or store
// objects before a validation rule exists sets Isolated, and gets its own
// API server and manager (slower: use it only when needed).
//
// TestCaseCount prints the cases by category and fails below the floor the
// promise issue set (150).
package hostile
