package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// down stops the serve process (which stops the manager and the cluster)
// and removes the demo directory.
func down(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := readState(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if st != nil && alive(st.PID) {
		fmt.Println("stopping the demo (pid", st.PID, ")")
		_ = syscall.Kill(st.PID, syscall.SIGTERM)
		deadline := time.Now().Add(45 * time.Second)
		for alive(st.PID) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if alive(st.PID) {
			// The cluster processes die with it (parent-death signal).
			_ = syscall.Kill(st.PID, syscall.SIGKILL)
		}
	} else {
		fmt.Println("no demo is running")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Println("removed", dir)
	return nil
}
