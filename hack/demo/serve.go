package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeistiod"
)

// state is what serve writes for up and down.
type state struct {
	PID         int      `json:"pid"`
	Kubeconfig  string   `json:"kubeconfig"`
	Nodes       []string `json:"nodes"`
	MetricsAddr string   `json:"metricsAddr"`
	ProbeAddr   string   `json:"probeAddr"`
	ManagerLog  string   `json:"managerLog"`
	ClusterLogs string   `json:"clusterLogs"`
	// ChartRepo is the local Helm repository serving Istio 1.28.1 and 1.29.0.
	ChartRepo string `json:"chartRepo"`
	// InjectorURL and InjectorCA are the in-process sidecar injector that
	// stands in for istiod's webhook (no containers run on fake nodes).
	InjectorURL string `json:"injectorURL"`
	InjectorCA  string `json:"injectorCA"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var s state
	return &s, json.Unmarshal(b, &s)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serve starts the cluster and the manager, records the state and waits
// for SIGTERM or SIGINT, then stops both.
func serve(dir string, nodes int) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fmt.Println("starting simulated cluster with", nodes, "nodes in", dir)
	sim, err := cluster.StartSimulated(cluster.SimulatedOptions{
		Nodes: nodes, Dir: filepath.Join(dir, "cluster"), CRDs: &cluster.CRDOptions{},
	})
	if err != nil {
		return err
	}
	defer sim.Stop()

	chartDir := filepath.Join(dir, "charts")
	if err := charts.StageIstioDir(chartDir, demoVersions...); err != nil {
		return err
	}
	repo, err := chartrepo.Start(chartDir)
	if err != nil {
		return err
	}
	defer repo.Close()
	inj, stopInjector, err := fakeistiod.Run()
	if err != nil {
		return err
	}
	defer stopInjector()

	bin, err := cluster.BinDir()
	if err != nil {
		return err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	probeAddr, err := freeAddr()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	mgr := exec.Command(filepath.Join(bin, "manager"),
		// Plain HTTP on loopback, so the printed curl needs no token; the
		// chart and bundle serve HTTPS behind Kubernetes authentication.
		"--metrics-bind-address="+metricsAddr, "--metrics-secure=false", "--health-probe-bind-address="+probeAddr,
		"--leader-elect=false", "--operator-namespace=meshplane-system", "--zap-devel")
	mgr.Env = append(os.Environ(), "KUBECONFIG="+sim.KubeconfigPath)
	mgr.Stdout, mgr.Stderr = logFile, logFile
	mgr.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := mgr.Start(); err != nil {
		return fmt.Errorf("starting manager: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- mgr.Wait() }()

	st := state{PID: os.Getpid(), Kubeconfig: sim.KubeconfigPath, Nodes: sim.Nodes, MetricsAddr: metricsAddr,
		ProbeAddr: probeAddr, ManagerLog: logPath, ClusterLogs: filepath.Join(sim.Dir, "logs"),
		ChartRepo: repo.URL, InjectorURL: inj.URL, InjectorCA: inj.CABundle}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(statePath(dir), b, 0o644); err != nil {
		return err
	}
	fmt.Println("cluster and manager running; state in", statePath(dir))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		fmt.Println("received", s, "- stopping manager and cluster")
		_ = mgr.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = mgr.Process.Kill()
		}
	case err := <-exited:
		fmt.Println("manager exited:", err)
	}
	_ = os.Remove(statePath(dir))
	return nil
}
