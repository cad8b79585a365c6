// Command kubectl-meshplane is a kubectl plugin for Meshplane
// (`kubectl meshplane …` once it is on the PATH):
//
//	status                      every Meshplane object with Ready and its reason
//	break-glass engage          create a BreakGlass (disable the mesh now, with a reason)
//	break-glass restore NAME    delete a BreakGlass, which restores the recorded state
//	canary promote|abort NAME   ask Meshplane to promote or roll back a Canary now
//	upgrade status              MeshInstall upgrade and namespace migration progress
//	render -f FILE              what Meshplane would write for each mesh, offline
//	diff -f FILE                that, compared with the live cluster
//
// It reads only what the operator reports in status and writes only
// Meshplane objects, so it works while the mesh control plane is down.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
