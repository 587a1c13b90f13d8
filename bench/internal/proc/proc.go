// Package proc reads what the benchmark programs report beside their timings: the CPU time the process
// used and how busy the machine was. On a shared machine wall-clock rates only say how much CPU was left
// over; CPU time per operation and the load average make figures from different runs comparable.
package proc

import (
	"os"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the user plus system CPU time of this process so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAvg is the machine's 1, 5 and 15 minute load average, or "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
