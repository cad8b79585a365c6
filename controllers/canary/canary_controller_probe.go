package canary

// This file holds every call into the analysis, webhook and metrics
// packages, so the controller's other files do not depend on their shape.

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/internal/delivery/webhook"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/outcome"
)

// probe answers the engine's questions for one reconcile.
type probe struct {
	ctx     context.Context
	r       *Reconciler
	cn      *meshv1alpha1.Canary
	target  analysis.Target
	payload webhook.Payload
}

// sharedChecker and sharedCaller serve every Reconciler without its own:
// a Checker holds its connection pools, and one made per reconcile left
// each pool's idle connections open for 90 s (1,000 Canaries analysed
// every second exhausted the process's file descriptors).
var (
	sharedChecker = &analysis.Checker{}
	sharedCaller  = &webhook.Caller{}
)

func (r *Reconciler) checker() *analysis.Checker {
	if r.Checker != nil {
		return r.Checker
	}
	return sharedChecker
}

func (r *Reconciler) caller() *webhook.Caller {
	if r.Caller != nil {
		return r.Caller
	}
	return sharedCaller
}

func (r *Reconciler) probe(ctx context.Context, cn *meshv1alpha1.Canary, w *world) delivery.Probe {
	interval := DefaultInterval
	if cn.Spec.Analysis.Interval != nil {
		interval = cn.Spec.Analysis.Interval.Duration
	}
	return &probe{ctx: ctx, r: r, cn: cn,
		target:  analysis.Target{Provider: w.provider, Namespace: cn.Namespace, Workload: w.n.target, Service: w.n.service, Interval: interval},
		payload: payloadOf(cn, TemplateHash(&w.target.Spec.Template)),
	}
}

func payloadOf(cn *meshv1alpha1.Canary, checksum string) webhook.Payload {
	return webhook.Payload{Name: cn.Name, Namespace: cn.Namespace, Phase: cn.Status.Phase, Checksum: checksum}
}

func hooksOf(cn *meshv1alpha1.Canary, typ meshv1alpha1.WebhookType) []meshv1alpha1.CanaryWebhook {
	var out []meshv1alpha1.CanaryWebhook
	for _, h := range cn.Spec.Analysis.Webhooks {
		if h.Type == typ {
			out = append(out, h)
		}
	}
	return out
}

// Gate calls the gate's webhooks; no webhook of the type is an open gate.
func (p *probe) Gate(typ meshv1alpha1.WebhookType) (bool, string) {
	if err := p.run(typ); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// run calls the hooks of one type and records the outcome when there are
// any.
func (p *probe) run(typ meshv1alpha1.WebhookType) error {
	if len(hooksOf(p.cn, typ)) == 0 {
		return nil
	}
	err := p.r.caller().Run(p.ctx, p.cn.Spec.Analysis.Webhooks, typ, p.payload)
	metrics.RecordWebhook(p.cn.Namespace, p.cn.Name, typ, err)
	return err
}

// RollbackRequested polls the rollback hooks: a 2xx answer asks for a
// rollback now (Flagger's semantics).
func (p *probe) RollbackRequested() (bool, string) {
	if len(hooksOf(p.cn, meshv1alpha1.WebhookRollback)) == 0 {
		return false, ""
	}
	name, err := p.r.caller().RollbackRequested(p.ctx, p.cn.Spec.Analysis.Webhooks, p.payload)
	if name != "" {
		metrics.RecordWebhook(p.cn.Namespace, p.cn.Name, meshv1alpha1.WebhookRollback, nil)
		return true, name
	}
	metrics.RecordWebhook(p.cn.Namespace, p.cn.Name, meshv1alpha1.WebhookRollback, err)
	return false, ""
}

// PreRollout calls the pre-rollout webhooks; a non-2xx answer fails the
// interval.
func (p *probe) PreRollout() delivery.CheckResult {
	if err := p.run(meshv1alpha1.WebhookPreRollout); err != nil {
		return delivery.CheckResult{Failed: true, Message: err.Error()}
	}
	return delivery.CheckResult{Message: "pre-rollout webhooks passed"}
}

// Analyse runs the metric checks and the rollout webhooks, side by side
// (an interval waits on the slower of the two, not on both in turn). An
// unreachable server, no data or a missing server fails the interval,
// never passes it.
func (p *probe) Analyse() delivery.CheckResult {
	hooks := make(chan error, 1)
	go func() { hooks <- p.run(meshv1alpha1.WebhookRollout) }()
	failed, passed := p.checkMetrics()
	if err := <-hooks; err != nil {
		failed = append(failed, err.Error())
	}
	if len(failed) > 0 {
		return delivery.CheckResult{Failed: true, Message: strings.Join(failed, "; ")}
	}
	return delivery.CheckResult{Message: fmt.Sprintf("%d metric check(s) passed", passed)}
}

// checkMetrics runs the metric checks: what failed, and how many passed.
func (p *probe) checkMetrics() (failed []string, passed int) {
	a := &p.cn.Spec.Analysis
	if len(a.Metrics) == 0 {
		return nil, 0
	}
	server := a.MetricsServer
	if server == nil && p.r.DefaultMetricsServer != "" {
		server = &meshv1alpha1.MetricsServer{Address: p.r.DefaultMetricsServer}
	}
	if server == nil {
		return []string{"no metrics server: set spec.analysis.metricsServer (or the operator's --metrics-server)"}, 0
	}
	creds, err := p.r.credentials(p.ctx, p.cn)
	if err != nil {
		return []string{err.Error()}, 0
	}
	results := p.r.checker().Check(p.ctx, *server, creds, a.Metrics, p.target)
	for _, res := range results {
		metrics.RecordCheck(p.cn.Namespace, p.cn.Name, res.Metric, res.Value, res.Passed)
	}
	if sum := analysis.Summary(results, maxMessage/2); sum != "" {
		failed = append(failed, sum)
	}
	return failed, len(results) - analysis.Failed(results)
}

// credentials reads the metrics server's Secret (uncached: Meshplane does
// not watch Secrets).
func (r *Reconciler) credentials(ctx context.Context, cn *meshv1alpha1.Canary) (*analysis.Credentials, error) {
	ms := cn.Spec.Analysis.MetricsServer
	if ms == nil || ms.SecretRef == nil {
		return nil, nil
	}
	var s corev1.Secret
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: ms.SecretRef.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
				"Secret %s/%s (spec.analysis.metricsServer.secretRef) does not exist; create it with keys username and password, or token", cn.Namespace, ms.SecretRef.Name)
		}
		return nil, err
	}
	c, err := analysis.CredentialsFromSecret(&s)
	if err != nil {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "%s (spec.analysis.metricsServer.secretRef)", err.Error())
	}
	return c, nil
}

// notify calls notification webhooks in the background: their answer
// changes nothing, and a slow one must not delay the reconcile.
func (r *Reconciler) notify(cn *meshv1alpha1.Canary, types []meshv1alpha1.WebhookType) {
	var calls []meshv1alpha1.WebhookType
	for _, t := range types {
		if len(hooksOf(cn, t)) > 0 {
			calls = append(calls, t)
		}
	}
	if len(calls) == 0 {
		return
	}
	hooks := cn.Spec.Analysis.Webhooks
	payload := payloadOf(cn, cn.Status.LastAppliedSpec)
	logger := log.Log.WithName("canary").WithValues("canary", cn.Namespace+"/"+cn.Name)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, t := range calls {
			err := r.caller().Run(ctx, hooks, t, payload)
			metrics.RecordWebhook(payload.Namespace, payload.Name, t, err)
			if err != nil {
				logger.Info("notification webhook failed", "type", t, "error", err.Error())
			}
		}
	}()
}

// recordMetrics drops a deleted Canary's analysis metrics. Its weight and
// phase are read from status at scrape time (internal/metrics Collector).
func recordMetrics(cn *meshv1alpha1.Canary) {
	if !cn.DeletionTimestamp.IsZero() && len(cn.Finalizers) == 0 {
		metrics.DeleteCanary(cn.Namespace, cn.Name)
	}
}
