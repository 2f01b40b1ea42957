package proc

import "syscall"

// procAttr makes the kernel kill a started process when the test process
// dies (say, killed by go test's -timeout, which runs no cleanup), so that
// no server outlives the test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
