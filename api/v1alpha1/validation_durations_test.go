package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// durationField is one metav1.Duration of the API with its bounds.
type durationField struct {
	base, path, name, min, max string
	// wrap turns the value into the YAML set at path (for durations inside
	// lists); the value itself when nil.
	wrap func(v string) string
}

const linkerdInstall = `
apiVersion: meshplane.io/v1alpha1
kind: MeshInstall
metadata: {name: NAME}
spec:
  provider: Linkerd
  version: edge-26.1.1
`

// durationFields lists every metav1.Duration of the API
// (grep -rn metav1.Duration api/v1alpha1: 17 fields).
func durationFields() []durationField {
	metric := func(v string) string {
		return fmt.Sprintf("[{name: errors, query: 'sum(x)', thresholdRange: {max: '1'}, interval: %q}]", v)
	}
	webhook := func(v string) string {
		return fmt.Sprintf("[{name: gate, type: rollout, url: 'http://gate.shop', timeout: %q}]", v)
	}
	retries := func(v string) string { return fmt.Sprintf("{attempts: 2, perTryTimeout: %q}", v) }
	return []durationField{
		{base: federation, path: "spec.root.generate.lifetime", name: "lifetime", min: "1h", max: "175200h"},
		{base: federation, path: "spec.intermediate.lifetime", name: "lifetime", min: "1h", max: "87600h"},
		{base: federation, path: "spec.intermediate.renewBefore", name: "renewBefore", min: "1m", max: "87600h"},
		{base: federation, path: "spec.rotation.rootRenewBefore", name: "rootRenewBefore", min: "1h", max: "87600h"},
		{base: federation, path: "spec.rotation.minPhaseWait", name: "minPhaseWait", min: "0s", max: "168h"},
		{base: trafficSplit, path: "spec.retries", name: "perTryTimeout", min: "1ms", max: "1h", wrap: retries},
		{base: meshInstall, path: "spec.upgrade.revisionRetention", name: "revisionRetention", min: "0s", max: "8760h"},
		{base: meshInstall, path: "spec.upgrade.rollout.pauseBetweenBatches", name: "pauseBetweenBatches", min: "0s", max: "24h"},
		{base: meshInstall, path: "spec.upgrade.rollout.healthTimeout", name: "healthTimeout", min: "1s", max: "24h"},
		{base: linkerdInstall, path: "spec.linkerd.identity.issuerLifetime", name: "issuerLifetime", min: "1h", max: "87600h"},
		{base: breakGlass, path: "spec.expiresAfter", name: "expiresAfter", min: "1m", max: "8760h"},
		{base: trafficSplit, path: "spec.timeout", name: "timeout", min: "1ms", max: "1h"},
		{base: canary, path: "spec.service.timeout", name: "timeout", min: "1ms", max: "1h"},
		{base: canary, path: "spec.analysis.metrics", name: "interval", min: "1s", max: "24h", wrap: metric},
		{base: canary, path: "spec.analysis.webhooks", name: "timeout", min: "1ms", max: "5m", wrap: webhook},
		{base: canary, path: "spec.analysis.interval", name: "interval", min: "1s", max: "24h"},
		{base: canary, path: "spec.progressDeadline", name: "progressDeadline", min: "1s", max: "24h"},
	}
}

// errorPath is the field path the API server names for f.
func (f durationField) errorPath() string {
	switch {
	case strings.HasSuffix(f.path, ".metrics"):
		return f.path + "[0].interval"
	case strings.HasSuffix(f.path, ".webhooks"):
		return f.path + "[0].timeout"
	case strings.HasSuffix(f.path, ".retries"):
		return f.path + ".perTryTimeout"
	}
	return f.path
}

func (f durationField) value(v string) string {
	if f.wrap != nil {
		return f.wrap(v)
	}
	return fmt.Sprintf("%q", v)
}

// TestDurationsRejected: every duration refuses what is not a Go duration
// ("banana", a sign, days, years, an empty string) and values out of its
// bounds, with a message naming the field, the value and an example, and
// accepts its bounds.
func TestDurationsRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	fields := durationFields()
	if len(fields) != 17 {
		t.Fatalf("%d duration fields, the API has 17", len(fields))
	}
	notDuration := func(f durationField, v string) string {
		return fmt.Sprintf(`%s: Invalid value: %q: %s %q is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)`, f.errorPath(), v, f.name, v)
	}
	outOfRange := func(f durationField, v string) string {
		return fmt.Sprintf(`%s: Invalid value: %q: %s must be between %s and %s; got %s`, f.errorPath(), v, f.name, f.min, f.max, v)
	}
	n := 0
	for i, f := range fields {
		cases := map[string]string{
			"banana":  notDuration(f, "banana"),
			"-5s":     notDuration(f, "-5s"),
			"1y":      notDuration(f, "1y"),
			"2d":      notDuration(f, "2d"),
			"10":      notDuration(f, "10"),
			"876001h": outOfRange(f, "876001h"),
		}
		if f.min != "0s" {
			cases["0s"] = outOfRange(f, "0s")
		}
		for v, want := range cases {
			n++
			obj := mustParse(strings.ReplaceAll(f.base, "NAME", fmt.Sprintf("dur-%d-%d", i, n)))
			set(f.path, f.value(v))(obj.Object)
			err := k8s.Create(context.Background(), obj)
			if !apierrors.IsInvalid(err) {
				t.Errorf("%s = %q: want Invalid, got %v", f.errorPath(), v, err)
				continue
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s = %q: message\n  %v\nwant it to contain\n  %s", f.errorPath(), v, err, want)
			}
		}
		for _, v := range []string{f.min, f.max} {
			n++
			obj := mustParse(strings.ReplaceAll(f.base, "NAME", fmt.Sprintf("dur-%d-%d", i, n)))
			set(f.path, f.value(v))(obj.Object)
			if err := k8s.Create(context.Background(), obj); err != nil {
				t.Errorf("%s = %q (a bound) refused: %v", f.errorPath(), v, err)
			}
		}
	}
}
