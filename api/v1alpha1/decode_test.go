package v1alpha1_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/scheme"
)

const canaryList = `{"apiVersion":"meshplane.io/v1alpha1","kind":"CanaryList","metadata":{"resourceVersion":"7"},"items":[
 {"apiVersion":"meshplane.io/v1alpha1","kind":"Canary","metadata":{"name":"bad","namespace":"shop","generation":3},
  "spec":{"provider":"Istio","targetRef":{"name":"podinfo"},"service":{"port":9898,"timeout":"2s"},"progressDeadline":"banana",
   "analysis":{"interval":"1y","stepWeight":10,"metrics":[{"name":"m","query":"q","thresholdRange":{"max":"1"},"interval":"-x"},{"name":"ok","query":"q","thresholdRange":{"max":"1"},"interval":"1m"}]}},
  "status":{"phase":"Progressing","canaryWeight":20}},
 {"apiVersion":"meshplane.io/v1alpha1","kind":"Canary","metadata":{"name":"good","namespace":"shop"},
  "spec":{"targetRef":{"name":"podinfo"},"service":{"port":9898},"progressDeadline":"5m","analysis":{"stepWeight":10}}}
]}`

// TestUndecodableFieldsAreLeftOut decodes a List with the API machinery's
// codecs, as the informer does: one object whose durations were stored
// before they were validated no longer fails the List; it is decoded
// without those fields and says which they are.
func TestUndecodableFieldsAreLeftOut(t *testing.T) {
	codecs := serializer.NewCodecFactory(scheme.New())
	var l meshv1alpha1.CanaryList
	if err := runtime.DecodeInto(codecs.UniversalDecoder(meshv1alpha1.GroupVersion), []byte(canaryList), &l); err != nil {
		t.Fatalf("the List fails: %v", err)
	}
	if len(l.Items) != 2 {
		t.Fatalf("%d items", len(l.Items))
	}
	bad, good := l.Items[0], l.Items[1]
	if good.Status.DecodeError() != "" || good.Spec.ProgressDeadline.Duration != 5*time.Minute {
		t.Errorf("good: note %q, progressDeadline %v", good.Status.DecodeError(), good.Spec.ProgressDeadline)
	}
	note := bad.Status.DecodeError()
	for _, want := range []string{
		`spec.analysis.interval: "1y" is not a duration; set a duration such as 30s, 5m or 1h30m`,
		`spec.analysis.metrics[0].interval: "-x" is not a duration`,
		`spec.progressDeadline: "banana" is not a duration`,
	} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	// Everything else is decoded.
	if bad.Spec.Provider != meshv1alpha1.ProviderIstio || bad.Spec.Service.Timeout.Duration != 2*time.Second ||
		bad.Generation != 3 || bad.Status.CanaryWeight != 20 || len(bad.Spec.Analysis.Metrics) != 2 ||
		bad.Spec.Analysis.Metrics[1].Interval.Duration != time.Minute || bad.Spec.ProgressDeadline != nil {
		t.Errorf("bad decoded as %+v", bad)
	}
	// The note survives a deep copy (the cache hands out copies) and is
	// never serialized.
	cp := bad.DeepCopy()
	if cp.Status.DecodeError() != note {
		t.Error("DeepCopy drops the note")
	}
	raw, err := json.Marshal(cp)
	if err != nil || strings.Contains(string(raw), "not a duration") {
		t.Errorf("the note is serialized: %s %v", raw, err)
	}
	// Decoding a good object into the same value clears the note.
	if err := json.Unmarshal([]byte(`{"spec":{"progressDeadline":"1m"}}`), cp); err != nil || cp.Status.DecodeError() != "" {
		t.Errorf("reused object: %v, note %q", err, cp.Status.DecodeError())
	}
}

// TestEveryKindDecodesTolerantly: each kind keeps the rest of an object
// whose one field cannot be decoded.
func TestEveryKindDecodesTolerantly(t *testing.T) {
	for _, tc := range []struct {
		obj interface {
			GetCommonStatus() *meshv1alpha1.CommonStatus
		}
		doc  string
		want string
	}{
		{&meshv1alpha1.MeshInstall{}, `{"spec":{"provider":"Istio","version":"1.28.1","upgrade":{"rollout":{"healthTimeout":"5 minutes"}}}}`, `spec.upgrade.rollout.healthTimeout: "5 minutes" is not a duration`},
		{&meshv1alpha1.MeshRevision{}, `{"spec":{"meshInstallRef":{"name":"istio"},"version":"1.29.0"},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"yesterday","reason":"x","message":""}]}}`, `status.conditions[0].lastTransitionTime: "yesterday" cannot be read`},
		{&meshv1alpha1.TrafficSplit{}, `{"spec":{"timeout":"1d"}}`, `spec.timeout: "1d" is not a duration`},
		{&meshv1alpha1.ZeroTrustPolicy{}, `{"metadata":{"creationTimestamp":"now"}}`, `metadata.creationTimestamp: "now" cannot be read`},
		{&meshv1alpha1.Canary{}, `{"spec":{"service":{"port":80,"targetPort":true}}}`, `spec.service.targetPort: true cannot be read`},
		{&meshv1alpha1.MeshFederation{}, `{"spec":{"rotation":{"minPhaseWait":"soon"}}}`, `spec.rotation.minPhaseWait: "soon" is not a duration`},
		{&meshv1alpha1.BreakGlass{}, `{"spec":{"reason":"r","expiresAfter":"-"}}`, `spec.expiresAfter: "-" is not a duration`},
		{&meshv1alpha1.Canary{}, `{"spec":{"analysis":{"metrics":[{"name":"a","interval":"1m"},{"name":"b","interval":"-90s"}]}}}`, `spec.analysis.metrics[1].interval: "-1m30s" is negative; set a duration such as 30s`},
	} {
		if err := json.Unmarshal([]byte(tc.doc), tc.obj); err != nil {
			t.Errorf("%T: %v", tc.obj, err)
			continue
		}
		if got := tc.obj.GetCommonStatus().DecodeError(); !strings.Contains(got, tc.want) {
			t.Errorf("%T: note %q, want %q", tc.obj, got, tc.want)
		}
	}
}
