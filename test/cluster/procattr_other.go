//go:build !unix

package cluster

import (
	"os"
	"syscall"
)

// sysProcAttr returns nil: process groups are a Unix notion.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup kills p; there is no graceful termination signal here.
func signalGroup(p *os.Process, _ syscall.Signal) {
	_ = p.Kill()
}
