// Command demo runs Meshplane's demo on a simulated cluster.
//
//	demo up   -dir .demo   start (or show) the demo
//	demo down -dir .demo   stop it and remove its data
//
// "up" starts a background process ("serve") that owns the simulated
// cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kwok with fake nodes) and the Meshplane manager, so both keep running
// after make returns; "down" stops that process, which stops everything it
// started. Every address is on loopback and the service range is
// 127.96.0.0/16.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".demo", "directory of the demo's cluster data, logs and state")
	nodes := fs.Int("nodes", 3, "number of fake nodes")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "up":
		err = up(*dir, *nodes)
	case "down":
		err = down(*dir)
	case "serve":
		err = serve(*dir, *nodes)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: demo up|down [-dir DIR] [-nodes N]")
	os.Exit(2)
}
