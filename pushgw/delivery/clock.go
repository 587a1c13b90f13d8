package delivery

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Clock schedules work; tests replace it to control time.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call that can be cancelled.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// RandomDelay draws a delay uniformly from [0, max] with crypto/rand, so that
// the send time reveals nothing about the event time (A_22808).
func RandomDelay(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; waiting the
		// maximum keeps the privacy property if it ever did.
		return max
	}
	// Millisecond resolution keeps the modulo bias negligible (2^64 / 10^4).
	steps := uint64(max/time.Millisecond) + 1
	return time.Duration(binary.LittleEndian.Uint64(b[:])%steps) * time.Millisecond
}
