package bench

import "syscall"

// sysProcAttr makes the kernel kill the server if the benchmark dies
// before stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
