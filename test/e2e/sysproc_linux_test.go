package e2e

import "syscall"

// sysProcAttr makes the kernel kill a kumo process if the test binary
// dies before stopping it (a timeout panic, for example).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
