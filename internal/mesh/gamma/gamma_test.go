package gamma

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{time.Second, "1s"}, {1500 * time.Millisecond, "1s500ms"}, {time.Hour + 2*time.Minute + 3*time.Second, "1h2m3s"},
		{time.Nanosecond, "1ms"}, {90 * time.Second, "1m30s"}, {1001 * time.Microsecond, "2ms"},
	} {
		if got := string(Duration(tc.in)); got != tc.want {
			t.Errorf("Duration(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestPrefixRegex(t *testing.T) {
	if got := PrefixRegex("beta.tester-"); got != `^beta\.tester-.*` {
		t.Fatal(got)
	}
}
