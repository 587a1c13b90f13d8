//go:build !unix

package planvm

func cpuNanos() int64 { return 0 }
