package manager

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
		check   func(Options) error
	}{
		{args: nil, check: func(o Options) error {
			if o.MetricsAddr != ":8443" || !o.SecureMetrics || o.ProbeAddr != ":8081" || o.LeaderElect || o.OperatorNamespace != "meshplane-system" {
				return fmt.Errorf("defaults: %+v", o)
			}
			return nil
		}},
		{args: []string{"--watch-namespaces", "shop, payments,,", "--leader-elect"}, check: func(o Options) error {
			if len(o.WatchNamespaces) != 2 || o.WatchNamespaces[1] != "payments" || !o.LeaderElect {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}},
		{args: []string{"--watch-namespaces", "Shop"}, wantErr: `namespace "Shop" is not valid`},
		{args: []string{"--operator-namespace", "meshplane_system"}, wantErr: `namespace "meshplane_system" is not valid`},
		{args: []string{"--sync-period", "10s"}, wantErr: "--sync-period 10s is too short"},
		{args: []string{"--metrics-server", "prometheus:9090"}, wantErr: "--metrics-server \"prometheus:9090\" must be an http:// or https:// address"},
		{args: []string{"--leader-elect-lease-duration", "30s", "--leader-elect-renew-deadline", "20s", "--leader-elect-retry-period", "4s"}, check: func(o Options) error {
			if o.LeaseDuration != 30*time.Second || o.RenewDeadline != 20*time.Second || o.RetryPeriod != 4*time.Second {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}},
		{args: nil, check: func(o Options) error {
			if o.LeaseDuration != 15*time.Second || o.RenewDeadline != 10*time.Second || o.RetryPeriod != 2*time.Second {
				return fmt.Errorf("lease defaults %s %s %s", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
			}
			return nil
		}},
		{args: []string{"--leader-elect-renew-deadline", "15s"}, wantErr: "--leader-elect-lease-duration 15s must be longer than --leader-elect-renew-deadline 15s"},
		{args: []string{"--leader-elect-retry-period", "10s"}, wantErr: "--leader-elect-renew-deadline 10s must be longer than --leader-elect-retry-period 10s"},
		{args: []string{"--leader-elect-retry-period", "10ms"}, wantErr: "--leader-elect-retry-period 10ms is too short (at least 100ms)"},
		{args: []string{"--metrics-server", "http://prometheus.monitoring:9090"}, check: func(o Options) error {
			if o.MetricsServer != "http://prometheus.monitoring:9090" {
				return fmt.Errorf("parsed %+v", o)
			}
			return nil
		}},
	} {
		var o Options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: want %q, got %v", tc.args, tc.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
		} else if err := tc.check(o); err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
}

func TestParseConcurrent(t *testing.T) {
	all := func(n int) map[string]int {
		m := map[string]int{}
		for name := range DefaultConcurrency {
			m[name] = n
		}
		return m
	}
	with := func(m map[string]int, kv ...any) map[string]int {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(int)
		}
		return m
	}
	for _, tc := range []struct {
		name, arg string
		want      map[string]int
		wantErr   []string
	}{
		{name: "a bare number sets every controller", arg: "8", want: all(8)},
		{name: "pairs set the named ones", arg: "trafficsplit=8,canary=16", want: map[string]int{"trafficsplit": 8, "canary": 16}},
		{name: "spaces and case are forgiven", arg: " TrafficSplit = 3 , ,", want: map[string]int{"trafficsplit": 3}},
		{name: "mixed: the number sets the ones not named", arg: "canary=16,2", want: with(all(2), "canary", 16)},
		{name: "mixed, number first", arg: "2,canary=16", want: with(all(2), "canary", 16)},
		{name: "the bounds are allowed", arg: "1,canary=256", want: with(all(1), "canary", 256)},
		{name: "unknown controller names the valid ones", arg: "trafficsplit=2,virtualservice=4",
			wantErr: []string{`"virtualservice=4"`, `no controller "virtualservice"`, "controllers are " + strings.Join(controllerNames(), ", ")}},
		{name: "zero", arg: "0", wantErr: []string{`"0": want a number of workers from 1 to 256`}},
		{name: "zero for one", arg: "canary=0", wantErr: []string{`"canary=0": want a number of workers from 1 to 256`}},
		{name: "300", arg: "300", wantErr: []string{`"300": want a number of workers from 1 to 256`}},
		{name: "300 for one", arg: "meshinstall=300", wantErr: []string{`"meshinstall=300": want a number`}},
		{name: "negative", arg: "-1", wantErr: []string{`"-1": want a number`}},
		{name: "not a number", arg: "canary=many", wantErr: []string{`"canary=many": want a number`, "e.g. 8 or trafficsplit=8,canary=16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			err := o.parseConcurrent(tc.arg)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("%q: no error, parsed %v", tc.arg, o.Concurrent)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%q: error %q lacks %q", tc.arg, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.arg, err)
			}
			if fmt.Sprint(o.Concurrent) != fmt.Sprint(tc.want) {
				t.Errorf("%q: parsed %v, want %v", tc.arg, o.Concurrent, tc.want)
			}
		})
	}
}

// TestConcurrentFlag parses --concurrent through the flag set, as the
// manager's command line does: a bad value fails the parse.
func TestConcurrentFlag(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	o.BindFlags(fs)
	if o.Concurrent != nil {
		t.Errorf("no --concurrent: Concurrent = %v, want nil (the defaults)", o.Concurrent)
	}
	if err := fs.Parse([]string{"--concurrent", "canary=12"}); err != nil {
		t.Fatal(err)
	}
	if got := o.ConcurrencyOf("canary"); got != 12 {
		t.Errorf("canary: %d, want 12", got)
	}
	if got := o.ConcurrencyOf("trafficsplit"); got != DefaultConcurrency["trafficsplit"] {
		t.Errorf("trafficsplit: %d, want the default %d", got, DefaultConcurrency["trafficsplit"])
	}
	err := fs.Parse([]string{"--concurrent", "gateway=2"})
	if err == nil || !strings.Contains(err.Error(), `invalid value "gateway=2" for flag -concurrent`) || !strings.Contains(err.Error(), "controllers are breakglass, canary,") {
		t.Errorf("--concurrent gateway=2: %v", err)
	}
	if usage := fs.Lookup("concurrent").Usage; !strings.Contains(usage, "Defaults: breakglass=1,canary=32,meshfederation=1,meshinstall=2,meshrevision=1,trafficsplit=16,zerotrustpolicy=16.") {
		t.Errorf("usage does not list the defaults: %s", usage)
	}
}

func TestConcurrencyOf(t *testing.T) {
	o := Options{Concurrent: map[string]int{"canary": 16, "trafficsplit": 0}}
	for _, tc := range []struct {
		name string
		want int
	}{
		{"canary", 16}, // set
		{"trafficsplit", DefaultConcurrency["trafficsplit"]}, // 0 is not a setting
		{"meshinstall", DefaultConcurrency["meshinstall"]},   // not named
		{"zerotrustpolicy", DefaultConcurrency["zerotrustpolicy"]},
		{"newkind", 1}, // a controller without a default
	} {
		if got := o.ConcurrencyOf(tc.name); got != tc.want {
			t.Errorf("ConcurrencyOf(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
	var zero Options
	for name, n := range DefaultConcurrency {
		if got := zero.ConcurrencyOf(name); got != n {
			t.Errorf("no --concurrent: ConcurrencyOf(%q) = %d, want %d", name, got, n)
		}
	}
}

func TestControllerOptions(t *testing.T) {
	m := &Manager{}
	if err := m.Options.parseConcurrent("3,canary=16"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"canary": 16, "trafficsplit": 3, "breakglass": 3, "unknown": 1} {
		if got := m.ControllerOptions(name).MaxConcurrentReconciles; got != want {
			t.Errorf("ControllerOptions(%q).MaxConcurrentReconciles = %d, want %d", name, got, want)
		}
	}
}
