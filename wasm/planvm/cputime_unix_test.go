//go:build unix

package planvm

import "syscall"

// cpuNanos is the process's user+system CPU time; benchmarks report it per
// operation beside wall time, which is unreliable on a busy shared machine.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
