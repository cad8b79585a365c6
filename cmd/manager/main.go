// Command manager runs Meshplane's controllers.
package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshplane/meshplane/controllers/setup"
	"github.com/meshplane/meshplane/internal/manager"
)

func main() {
	var opts manager.Options
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{Development: false}
	// --zap-log-level (debug, info, error or a number), --zap-devel,
	// --zap-encoder (json, console), --zap-stacktrace-level.
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "no Kubernetes configuration (set KUBECONFIG or run in a cluster)")
		os.Exit(1)
	}
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		log.Error(err, "cannot build the manager")
		os.Exit(1)
	}
	if err := setup.All(mgr); err != nil {
		log.Error(err, "cannot set up the controllers")
		os.Exit(1)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}
