package analysis

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCredentialsFromSecret(t *testing.T) {
	sec := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "prom-auth"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	cases := []struct {
		name    string
		s       *corev1.Secret
		want    Credentials
		wantErr string
	}{
		{"token", sec(map[string]string{"token": "abc\n"}), Credentials{Token: "abc"}, ""},
		{"token wins over basic", sec(map[string]string{"token": "abc", "username": "u", "password": "p"}), Credentials{Token: "abc"}, ""},
		{"basic", sec(map[string]string{"username": "u", "password": "p w"}), Credentials{Username: "u", Password: "p w"}, ""},
		{"username without password", sec(map[string]string{"username": "u"}), Credentials{}, "has key username but no password"},
		{"empty", sec(nil), Credentials{}, "shop/prom-auth has neither key token nor keys username and password"},
		{"nil", nil, Credentials{}, "no Secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CredentialsFromSecret(tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v, %v", tc.wantErr, got, err)
				}
				return
			}
			if err != nil || *got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	rs := []Result{
		{Metric: "a", Passed: true},
		{Metric: "b", Message: "metric b: value 97 is below min 99 (range [99, +inf])"},
		{Metric: "c", Message: "metric c: no data for query x"},
	}
	if got, want := Summary(rs, 0), "2 of 3 metric checks failed: metric b: value 97 is below min 99 (range [99, +inf]); metric c: no data for query x"; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if got := Summary(rs, 40); len(got) > 40 || !strings.HasSuffix(got, "…") {
		t.Fatalf("cut summary %q (%d bytes)", got, len(got))
	}
	if got := Summary(rs[:1], 0); got != "" {
		t.Fatalf("all passed: %q", got)
	}
}
