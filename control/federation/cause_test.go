package federation_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/control/vzd"
	standin "github.com/timfd/fachdienst/standin/vzd"
)

// The incident names its cause: an operator must tell an unreachable VZD from one that answers with an
// error or serves a list that does not verify.
func TestIncidentNamesItsCause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(*scriptedVZD)
		cause  string
	}{
		{"unreachable", func(s *scriptedVZD) { s.fail = errors.New("dial tcp: connection refused") }, federation.CauseUnreachable},
		{"http status", func(s *scriptedVZD) { s.fail = &vzd.APIError{Op: "federation list", Status: 503} }, "http_status 503"},
		{"invalid signature", func(s *scriptedVZD) { s.garble = true }, federation.CauseInvalidSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, federation.Config{})
			e.run(t, e.m)
			e.sv.AddDomain(standin.Domain{Domain: "c.example.de", TelematikID: "1-c"}) // a new version to deliver
			e.vzd.set(tc.script)
			e.advance(t, time.Hour)
			for range 3 {
				e.advance(t, 5*time.Minute)
			}
			h := e.m.Health()
			require.True(t, h.IncidentActive)
			assert.Equal(t, tc.cause, h.LastCause)
			in := e.m.Incidents()
			require.Len(t, in, 1)
			assert.Equal(t, tc.cause, in[0].Cause)
			assert.Nil(t, in[0].ResolvedAt)
			assert.Contains(t, e.logs.String(), `"cause":"`+tc.cause+`"`)

			e.vzd.set(func(s *scriptedVZD) { s.fail, s.garble = nil, false })
			e.advance(t, time.Hour)
			in = e.m.Incidents()
			require.Len(t, in, 1)
			assert.NotNil(t, in[0].ResolvedAt, "resolved by the next good update")
		})
	}
}

func TestCauseOfSchemaError(t *testing.T) {
	e := newEnv(t, federation.Config{})
	_, _, err := e.ver([]byte("not.a.jws"), time.Now())
	require.Error(t, err)
	assert.Equal(t, federation.CauseInvalidSchema, federation.Cause(err))
}
