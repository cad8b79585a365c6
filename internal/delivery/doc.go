// Package delivery is the Canary engine (progressive delivery): the plan of steps each strategy
// walks through (PlanFor), the threshold rule (ShouldRollback) and the
// state machine (Step), a pure function from the state kept in
// CanaryStatus and what a reconcile observed to the next state. The only
// I/O it triggers goes through a Probe (gate webhooks, metric analysis),
// which it calls only when the answer decides the transition. The
// controller (controllers/canary) applies the decision; the analysis and
// webhook calls live in the analysis and webhook sub-packages.
//
// # Phases
//
//	Initializing ──primary Available──▶ Initialized
//	Initialized | Succeeded | Failed ──new revision──▶ Progressing (Waiting while confirm-rollout holds)
//	Progressing ──every interval: checks pass, next step──▶ Progressing
//	Progressing ──last step passed──▶ Promoting (WaitingPromotion while confirm-promotion holds)
//	Progressing | Waiting | WaitingPromotion ──failedChecks ≥ threshold, abort, progress deadline──▶ Failed
//	Progressing | Waiting | WaitingPromotion ──new revision──▶ Progressing (restarted at step 0)
//	Promoting ──primary Available with the new template──▶ Finalising ──canary at zero──▶ Succeeded
//
// # Ordering guarantees
//
// The route a state implies (RouteFor) and the canary's replicas
// (ScaleFor) follow from the state alone, so a reconcile that fails half
// way is completed by the next one and never leaves an intermediate
// routing behind. The controller writes in this order:
//
//  1. The canary is scaled up before an analysis starts, and a step gives
//     it traffic only after it is Available (Step waits for
//     CanaryAvailable, the progress deadline rolls it back otherwise).
//  2. Promotion first routes every request to the canary (Available and
//     analysed), then writes the canary's template to the primary; traffic
//     returns to the primary only once the primary is Available with that
//     template. A primary that never becomes Available leaves the canary
//     serving: Meshplane never routes to a primary that is not Available.
//  3. Rollback routes everything to the primary in the same reconcile
//     that reached the threshold, reads the route back to confirm the
//     canary gets nothing, and only then scales the canary to zero.
//  4. The canary is scaled to zero only after the route read back sends
//     it nothing (Finalising, Failed, idle phases).
//
// # Counting
//
// One analysis runs per interval. Iterations counts the steps entered (0:
// before the first step, the primary serves everything); FailedChecks
// counts failed intervals (any failed metric or check webhook fails the
// interval) and is not reset by a passing interval within one analysis.
// The analysis keeps running while confirm-promotion holds (the canary
// keeps its last step's traffic), so a canary failing then is rolled back.
// A new revision resets both.
package delivery
