//go:build !linux

package proc

import "syscall"

// procAttr: only Linux can tie a process's life to its parent's.
func procAttr() *syscall.SysProcAttr { return nil }
