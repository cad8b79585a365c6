//go:build unix

package cluster

import (
	"fmt"
	"syscall"
)

// Pause stops (SIGSTOP) one component process this cluster started, e.g.
// ComponentKubeAPIServer: it holds its connections open and answers
// nothing until Resume, as a frozen or overloaded server would. Only
// processes of this cluster are ever signalled.
func (s *Simulated) Pause(component string) error {
	return s.signal(component, syscall.SIGSTOP)
}

// Resume continues (SIGCONT) a component stopped by Pause.
func (s *Simulated) Resume(component string) error {
	return s.signal(component, syscall.SIGCONT)
}

func (s *Simulated) signal(component string, sig syscall.Signal) error {
	p := s.procs[component]
	if p == nil {
		return fmt.Errorf("no %s process in this cluster", component)
	}
	if p.exited() {
		return p.exitError()
	}
	return p.cmd.Process.Signal(sig)
}
