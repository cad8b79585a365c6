package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// refField is one field of the API that names another object.
type refField struct {
	base string
	// path of the name field, as the API server reports it.
	path string
	// object is the kind named in the message ("Secret", "object", ...).
	object string
	// mutate sets the name to v (and whatever the base needs around it).
	mutate func(v string) []func(map[string]any)
}

func refFields() []refField {
	at := func(path string) func(string) []func(map[string]any) {
		return func(v string) []func(map[string]any) { return []func(map[string]any){set(path, fmt.Sprintf("%q", v))} }
	}
	return []refField{
		{base: breakGlass, path: "spec.target.meshInstallRef.name", object: "object", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.target", fmt.Sprintf("{meshInstallRef: {name: %q}}", v))}
		}},
		{base: meshRevision, path: "spec.meshInstallRef.name", object: "object", mutate: at("spec.meshInstallRef.name")},
		{base: canary, path: "spec.targetRef.name", object: "Deployment", mutate: func(v string) []func(map[string]any) {
			// service.name keeps the Service-name rule of targetRef out of the way.
			return []func(map[string]any){set("spec.targetRef.name", fmt.Sprintf("%q", v)), set("spec.service.name", "podinfo")}
		}},
		{base: canary, path: "spec.analysis.metricsServer.secretRef.name", object: "object", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.analysis.metricsServer", fmt.Sprintf("{address: 'http://prometheus:9090', secretRef: {name: %q}}", v))}
		}},
		{base: federation, path: "spec.root.secretRef.name", object: "Secret", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.root", fmt.Sprintf("{secretRef: {name: %q}}", v))}
		}},
		{base: federation, path: "spec.clusters[1].kubeconfigSecretRef.name", object: "Secret", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.clusters", fmt.Sprintf("[{name: local, provider: Istio}, {name: remote, provider: Istio, kubeconfigSecretRef: {name: %q}}]", v))}
		}},
		{base: meshInstall, path: "spec.chart.credentialsSecretRef.name", object: "Secret", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.chart", fmt.Sprintf("{repository: 'https://charts.example.com', credentialsSecretRef: {name: %q}}", v))}
		}},
		{base: meshInstall, path: "spec.chart.caSecretRef.name", object: "Secret", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.chart", fmt.Sprintf("{repository: 'https://charts.example.com', caSecretRef: {name: %q}}", v))}
		}},
		{base: linkerdInstall, path: "spec.linkerd.identity.trustAnchorSecretRef.name", object: "Secret", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.linkerd", fmt.Sprintf("{identity: {trustAnchorSecretRef: {name: %q}, issuerSecretRef: {name: issuer}}}", v))}
		}},
		{base: linkerdInstall, path: "spec.linkerd.identity.issuerSecretRef.name", object: "Secret", mutate: func(v string) []func(map[string]any) {
			return []func(map[string]any){set("spec.linkerd", fmt.Sprintf("{identity: {trustAnchorSecretRef: {name: anchor}, issuerSecretRef: {name: %q}}}", v))}
		}},
	}
}

// TestReferenceNamesRejected: every field that names another object
// refuses a namespace/name, an empty label, upper case and an over-long
// name, naming the field and the fix, before the controller ever reads it.
func TestReferenceNamesRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an API server")
	}
	n := 0
	for _, f := range refFields() {
		for _, v := range []string{"shop/db-credentials", "db..credentials", "DB-Credentials", "-db", strings.Repeat("a", 254)} {
			n++
			obj := mustParse(strings.ReplaceAll(f.base, "NAME", fmt.Sprintf("ref-%d", n)))
			for _, m := range f.mutate(v) {
				m(obj.Object)
			}
			err := k8s.Create(context.Background(), obj)
			if !apierrors.IsInvalid(err) {
				t.Errorf("%s = %q: want Invalid, got %v", f.path, v, err)
				continue
			}
			want := fmt.Sprintf(`%s: Invalid value: %q: name %q is not a valid %s name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (a DNS-1123 subdomain); give the name alone, without a namespace/ prefix`, f.path, v, v, f.object)
			if len(v) > 250 {
				want = f.path + ": Too long: may not be more than"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s = %q: message\n  %v\nwant it to contain\n  %s", f.path, v, err, want)
			}
		}
		n++
		obj := mustParse(strings.ReplaceAll(f.base, "NAME", fmt.Sprintf("ref-%d", n)))
		for _, m := range f.mutate("db-credentials.v2") {
			m(obj.Object)
		}
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Errorf("%s = db-credentials.v2 refused: %v", f.path, err)
		}
	}
}
