// Package push holds the types shared by the push gateway's parts: what a
// notification carries after the privacy rules have been applied, the device
// it goes to, and what a provider answered.
package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Notice is everything a device learns from a push: enough to fetch the event
// from its homeserver, nothing more (A_22808: no message content, no sender,
// no room name). Providers never see it in clear; it travels encrypted.
type Notice struct {
	EventID string `json:"event_id,omitempty"`
	RoomID  string `json:"room_id,omitempty"`
	Prio    string `json:"prio,omitempty"`
	Counts  Counts `json:"counts"`
}

// Counts are the badge counters the homeserver computed.
type Counts struct {
	Unread      int `json:"unread"`
	MissedCalls int `json:"missed_calls,omitempty"`
}

// Device is one pusher of the notification: the app id selects the provider
// configuration, Data carries what the client registered (encryption keys,
// the Web Push endpoint).
type Device struct {
	AppID   string                     `json:"app_id"`
	PushKey string                     `json:"pushkey"`
	Data    map[string]json.RawMessage `json:"data,omitempty"`
}

// DataString returns a string field of the pusher data, "" when absent or not
// a string.
func (d Device) DataString(key string) string {
	raw, ok := d.Data[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// Outcome classifies a provider's answer.
type Outcome int

const (
	// Sent: the provider accepted the message.
	Sent Outcome = iota
	// Retry: a temporary failure (429, 5xx, network); try again later.
	Retry
	// Reject: the provider says the pushkey is gone for good; the homeserver
	// must remove the pusher.
	Reject
	// Drop: a permanent failure that is not the pushkey's fault (bad
	// credentials, payload refused); retrying would not help.
	Drop
)

func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	default:
		return "drop"
	}
}

// Result is a provider's answer to one send.
type Result struct {
	Outcome Outcome
	// RetryAfter is the provider's requested pause (Retry-After), zero if none.
	RetryAfter time.Duration
	// Reason is a short machine-readable cause for logs and metrics; it never
	// contains pushkeys or ids.
	Reason string
}

// Sender delivers one notice to one device of one app.
type Sender interface {
	// Check tells, when the notification arrives, whether the pusher data
	// allows delivery at all (encryption keys present, endpoint allowed).
	// A device that fails it is reported as rejected at once.
	Check(dev Device) error
	// Send delivers; it must honour ctx and never block past it.
	Send(ctx context.Context, dev Device, n Notice) Result
}

// Hash returns a short, stable digest of an identifier so that logs can
// correlate events without naming pushkeys, MXIDs or event ids in clear.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// ParseRetryAfter reads a Retry-After header given in seconds; HTTP dates
// and garbage yield zero so that the caller's own back-off applies.
func ParseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var secs int
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		secs = secs*10 + int(c-'0')
		if secs > 3600 {
			return time.Hour
		}
	}
	return time.Duration(secs) * time.Second
}
