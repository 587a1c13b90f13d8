package federation

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/timfd/fachdienst/control/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

// Causes of a failed update, as the incident log and the operator CLI name them.
const (
	CauseUnreachable      = "unreachable"       // no answer (connection, TLS, timeout)
	CauseHTTPStatus       = "http_status"       // the VZD answered with an error status
	CauseInvalidSignature = "invalid_signature" // the list's signature or certificate chain does not verify
	CauseInvalidSchema    = "invalid_schema"    // the list is not a well-formed federation list
	CauseInvalidVersion   = "invalid_version"   // older than the held list, or "current" without one
)

// errEmptyList: a list without domains (FedlistVerifier).
var errEmptyList = errors.New("federation list has no domains")

// errInvalidVersion marks a list refused for its version.
var errInvalidVersion = errors.New("federation list version")

// Cause names why an update failed; with an HTTP status it reads "http_status 503".
func Cause(err error) string {
	var api *vzd.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &api):
		return fmt.Sprintf("%s %d", CauseHTTPStatus, api.Status)
	case errors.Is(err, fedlist.ErrBadSignature), errors.Is(err, fedlist.ErrUntrustedChain),
		errors.Is(err, fedlist.ErrCertExpired), errors.Is(err, fedlist.ErrUnsupportedAlg):
		return CauseInvalidSignature
	case errors.Is(err, fedlist.ErrMalformed), errors.Is(err, errEmptyList):
		return CauseInvalidSchema
	case errors.Is(err, errInvalidVersion):
		return CauseInvalidVersion
	default:
		return CauseUnreachable
	}
}

// Incident is one entry of the incident log: raised after the health checks failed, resolved by
// the next good update.
type Incident struct {
	RaisedAt   time.Time  `json:"raised_at"`
	Cause      string     `json:"cause"`
	Error      string     `json:"error"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// maxIncidents bounds the incident log held in memory (the log lines and the webhook keep the rest).
const maxIncidents = 100

type incidentLog struct {
	mu   sync.Mutex
	list []Incident
}

func (l *incidentLog) raise(at time.Time, err error) Incident {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := Incident{RaisedAt: at, Cause: Cause(err), Error: err.Error()}
	if len(l.list) == maxIncidents {
		l.list = append(l.list[:0], l.list[1:]...)
	}
	l.list = append(l.list, in)
	return in
}

func (l *incidentLog) resolve(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.list); n > 0 && l.list[n-1].ResolvedAt == nil {
		l.list[n-1].ResolvedAt = &at
	}
}

// Incidents returns the incident log, newest last.
func (m *Manager) Incidents() []Incident {
	m.incidents.mu.Lock()
	defer m.incidents.mu.Unlock()
	return append([]Incident{}, m.incidents.list...)
}
