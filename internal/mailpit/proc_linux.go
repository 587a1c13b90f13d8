package mailpit

import (
	"os/exec"
	"syscall"
)

// orphanGuard has the kernel stop Mailpit when the process that started it dies without Stop.
func orphanGuard(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
