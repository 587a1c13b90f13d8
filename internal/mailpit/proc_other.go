//go:build !linux

package mailpit

import "os/exec"

func orphanGuard(*exec.Cmd) {}
