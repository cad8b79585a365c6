package canary

import (
	"sync"
	"time"

	"reflect"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// AnalysisHeartbeat is how stale status.lastAnalysisTime may get while
// nothing else in a Canary's status changes.
const AnalysisHeartbeat = 30 * time.Second

// analysed keeps, per Canary, the time of its last analysis interval when
// that interval changed nothing else in the status. A Canary held at a
// step (a confirm-promotion gate, a long analysis) checks every interval
// and finds the same answers: writing its status only to move
// lastAnalysisTime cost one write per Canary and interval (1,000 held
// Canaries at a 1 s interval: 1,000 status patches a second, and the
// uncached re-read each write causes), and those writes delayed the
// rollbacks they stood beside. The time is written with the next change,
// or once it is AnalysisHeartbeat older than the one in status. An
// operator that restarts (or a new leader) reads the status's time and
// runs the next interval at most AnalysisHeartbeat early.
type analysed struct{ at sync.Map }

// analysedAt is a remembered time, for the Canary of that UID.
type analysedAt struct {
	uid types.UID
	at  time.Time
}

// last returns when cn's last interval ran: the status's time, or the
// remembered one when later.
func (a *analysed) last(cn *meshv1alpha1.Canary, fromStatus time.Time) time.Time {
	if v, ok := a.at.Load(client.ObjectKeyFromObject(cn)); ok && v.(analysedAt).uid == cn.UID && v.(analysedAt).at.After(fromStatus) {
		return v.(analysedAt).at
	}
	return fromStatus
}

// hold keeps a new lastAnalysisTime out of the status when it is the
// status's only change since before and the status's time is younger
// than AnalysisHeartbeat; it is remembered instead.
func (a *analysed) hold(cn *meshv1alpha1.Canary, before *meshv1alpha1.CanaryStatus) {
	st := &cn.Status
	if st.LastAnalysisTime == nil || before.LastAnalysisTime == nil || st.LastAnalysisTime.Equal(before.LastAnalysisTime) {
		a.forget(client.ObjectKeyFromObject(cn))
		return
	}
	next := *st.LastAnalysisTime
	st.LastAnalysisTime = before.LastAnalysisTime
	if next.Sub(before.LastAnalysisTime.Time) < AnalysisHeartbeat && reflect.DeepEqual(st, before) {
		a.at.Store(client.ObjectKeyFromObject(cn), analysedAt{uid: cn.UID, at: next.Time})
		return
	}
	st.LastAnalysisTime = &next
	a.forget(client.ObjectKeyFromObject(cn))
}

// forget drops what is remembered of the Canary at key (gone, or its
// time written).
func (a *analysed) forget(key client.ObjectKey) { a.at.Delete(key) }
