package internalapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/control/internalapi"
	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/control/vzd"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

const (
	secret    = "current-secret-0123456789"
	oldSecret = "previous-secret-0123456789"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The policy compiles once per test binary; it does not change between tests.
var policyOnce = sync.OnceValues(func() (*policyserve.Server, error) {
	return policyserve.New(context.Background(), policyserve.Config{Logger: quiet})
})

type stack struct {
	vzd    *standin.Server
	clock  *federation.ManualClock
	fed    *federation.Manager
	policy *policyserve.Server
	api    *httptest.Server
	trust  *fedlist.TrustStore
}

// newStack wires the stand-in VZD (over TLS), the VZD client, the federation lifecycle (manual clock),
// the policy server and the internal API (over HTTP), as tim-control does.
func newStack(t testing.TB, fetchFirst bool) *stack {
	t.Helper()
	sv, err := standin.New(standin.WithDomains(
		standin.Domain{Domain: "a.example.de", TelematikID: "1-a"},
		standin.Domain{Domain: "b.example.de", TelematikID: "1-b"}))
	require.NoError(t, err)
	vsrv := httptest.NewTLSServer(sv)
	t.Cleanup(vsrv.Close)
	client, err := vzd.New(vzd.Config{BaseURL: vsrv.URL, ClientID: "tim-fd", ClientSecret: "secret", HTTPClient: vsrv.Client(),
		MaxAttempts: 2, BackoffBase: time.Millisecond, Logger: quiet})
	require.NoError(t, err)
	ts, err := fedlist.NewTrustStore(sv.TrustAnchorPEM())
	require.NoError(t, err)
	clock := federation.NewManualClock(time.Now())
	fed, err := federation.New(federation.Config{}, client, federation.FedlistVerifier(ts), federation.NewMemoryStore(), clock, quiet, nil)
	require.NoError(t, err)
	if fetchFirst {
		require.NoError(t, fed.Refresh(context.Background()))
	}
	pol, err := policyOnce()
	require.NoError(t, err)
	api, err := internalapi.New(internalapi.Config{
		Secrets:    []string{secret, oldSecret},
		Federation: fed,
		Policy:     pol,
		Invite:     internalapi.InviteDeciderFunc(decide),
		Logger:     quiet,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &stack{vzd: sv, clock: clock, fed: fed, policy: pol, api: srv, trust: ts}
}

// decide stands in for control/invite: the invitee's localpart says what to answer.
func decide(_ context.Context, inviter, invitee string) (internalapi.Decision, error) {
	switch {
	case strings.HasPrefix(invitee, "@allowed:"):
		return internalapi.Decision{Allow: true, Stage: 2, Reason: "on the release list"}, nil
	case strings.HasPrefix(invitee, "@listed:"):
		return internalapi.Decision{Allow: true, Stage: 3, Reason: "listed in the VZD"}, nil
	case strings.HasPrefix(invitee, "@broken:"):
		return internalapi.Decision{}, errors.New("VZD unreachable")
	}
	return internalapi.Decision{Allow: false, Stage: 3, Reason: "not listed"}, nil
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (s *stack) do(t *testing.T, method, path, auth string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.api.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, resp.Header, b}
}

func (s *stack) get(t *testing.T, path string) answer {
	return s.do(t, http.MethodGet, path, "Bearer "+secret, nil)
}

func TestAuthentication(t *testing.T) {
	s := newStack(t, true)
	endpoints := []struct{ method, path, body string }{
		{"GET", "/internal/v1/federation-list", ""},
		{"GET", "/internal/v1/policy", ""},
		{"POST", "/internal/v1/invite-permission", `{"inviter":"@a:a.example.de","invitee":"@allowed:b.example.de"}`},
	}
	creds := []struct {
		name string
		auth string
		want int
	}{
		{"no credential", "", 401},
		{"wrong secret", "Bearer not-the-secret-at-all", 401},
		{"secret with extra byte", "Bearer " + secret + "x", 401},
		{"secret prefix", "Bearer " + secret[:len(secret)-1], 401},
		{"basic scheme", "Basic " + secret, 401},
		{"bare secret", secret, 401},
		{"current secret", "Bearer " + secret, 200},
		{"previous secret during rotation", "Bearer " + oldSecret, 200},
	}
	for _, e := range endpoints {
		for _, c := range creds {
			t.Run(e.path+"/"+c.name, func(t *testing.T) {
				var body []byte
				if e.body != "" {
					body = []byte(e.body)
				}
				a := s.do(t, e.method, e.path, c.auth, body)
				assert.Equal(t, c.want, a.status)
				if c.want == 401 {
					assert.JSONEq(t, `{"errcode":"M_UNAUTHORIZED","error":"internal API credential missing or invalid"}`, string(a.body))
					assert.NotEmpty(t, a.header.Get("WWW-Authenticate"))
				}
			})
		}
	}
}

func TestNewRefusesOpenOrWeakConfig(t *testing.T) {
	fed := &federation.Manager{}
	pol, err := policyOnce()
	require.NoError(t, err)
	inv := internalapi.InviteDeciderFunc(decide)
	cases := []struct {
		name string
		cfg  internalapi.Config
	}{
		{"no secret", internalapi.Config{Federation: fed, Policy: pol, Invite: inv}},
		{"short secret", internalapi.Config{Secrets: []string{"short"}, Federation: fed, Policy: pol, Invite: inv}},
		{"no invite decider", internalapi.Config{Secrets: []string{secret}, Federation: fed, Policy: pol}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := internalapi.New(c.cfg)
			assert.Error(t, err)
		})
	}
}

func TestFederationList(t *testing.T) {
	s := newStack(t, true)
	served, _, err := s.vzd.SignedList("BP256R1")
	require.NoError(t, err)

	cases := []struct {
		query      string
		wantStatus int
		wantBody   string // "jws" for the list itself
	}{
		{"", 200, "jws"},
		{"?version=0", 200, "jws"},
		{"?version=1", 204, ""},
		{"?version=7", 204, ""},
		{"?version=-1", 400, `{"errcode":"M_INVALID_PARAM","error":"version must be a non-negative integer"}`},
		{"?version=abc", 400, `{"errcode":"M_INVALID_PARAM","error":"version must be a non-negative integer"}`},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			a := s.get(t, "/internal/v1/federation-list"+c.query)
			require.Equal(t, c.wantStatus, a.status)
			switch c.wantBody {
			case "jws":
				assert.Equal(t, "application/jose", a.header.Get("Content-Type"))
				assert.Equal(t, "1", a.header.Get("X-Federation-Version"))
				assert.Equal(t, served, a.body, "the VZD's JWS unchanged")
				l, err := fedlist.Verify(a.body, s.trust, time.Now())
				require.NoError(t, err)
				assert.True(t, l.Contains("a.example.de"))
			case "":
				assert.Empty(t, a.body)
				assert.Equal(t, "1", a.header.Get("X-Federation-Version"))
			default:
				assert.JSONEq(t, c.wantBody, string(a.body))
			}
		})
	}
}

func TestFederationListRefreshedOnRequestWhenOld(t *testing.T) {
	s := newStack(t, true)
	s.vzd.AddDomain(standin.Domain{Domain: "c.example.de", TelematikID: "1-c"})

	// Younger than an hour: the held list is current for the proxy.
	s.clock.Advance(30 * time.Minute)
	assert.Equal(t, 204, s.get(t, "/internal/v1/federation-list?version=1").status)

	// Older than an hour: the control plane asks the VZD first and hands out the new list.
	s.clock.Advance(31 * time.Minute)
	a := s.get(t, "/internal/v1/federation-list?version=1")
	require.Equal(t, 200, a.status)
	assert.Equal(t, "2", a.header.Get("X-Federation-Version"))
	l, err := fedlist.Verify(a.body, s.trust, time.Now())
	require.NoError(t, err)
	assert.True(t, l.Contains("c.example.de"))
}

func TestFederationListOutdatedAndUnavailable(t *testing.T) {
	t.Run("no list yet", func(t *testing.T) {
		s := newStack(t, false)
		s.vzd.SetFaults(standin.Faults{FailStatus: 503, FailCount: -1})
		a := s.get(t, "/internal/v1/federation-list")
		assert.Equal(t, 503, a.status)
		assert.JSONEq(t, `{"status":"unavailable"}`, string(a.body))
	})
	t.Run("older than 72 h", func(t *testing.T) {
		s := newStack(t, true)
		s.vzd.SetFaults(standin.Faults{FailStatus: 503, FailCount: -1})
		s.clock.Advance(72*time.Hour + time.Second)
		a := s.get(t, "/internal/v1/federation-list?version=1")
		assert.Equal(t, 503, a.status)
		assert.JSONEq(t, `{"status":"outdated"}`, string(a.body))
		assert.Equal(t, "application/json", a.header.Get("Content-Type"))
		assert.False(t, s.fed.Health().Healthy, "the refresh attempt failed")

		// The VZD is back: the next poll (here: an explicit refresh) makes the list current again.
		s.vzd.SetFaults(standin.Faults{})
		require.NoError(t, s.fed.Refresh(context.Background()))
		assert.Equal(t, 204, s.get(t, "/internal/v1/federation-list?version=1").status)
	})
	t.Run("garbled list from the VZD is not passed on", func(t *testing.T) {
		s := newStack(t, false)
		s.vzd.SetFaults(standin.Faults{GarbleJWS: true})
		assert.Error(t, s.fed.Refresh(context.Background()))
		assert.Equal(t, 503, s.get(t, "/internal/v1/federation-list").status)
	})
}

func TestPolicy(t *testing.T) {
	s := newStack(t, true)
	rev := s.policy.Current().Revision

	a := s.get(t, "/internal/v1/policy")
	require.Equal(t, 200, a.status)
	assert.Equal(t, "application/json", a.header.Get("Content-Type"))
	assert.Equal(t, rev, a.header.Get("X-Policy-Revision"))
	var doc struct {
		Revision string          `json:"revision"`
		Plan     json.RawMessage `json:"plan"`
		Data     struct {
			Config map[string]any `json:"config"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a.body, &doc))
	assert.Equal(t, rev, doc.Revision)
	assert.Contains(t, string(doc.Plan), `"tim/proxy/decision"`)
	assert.Contains(t, doc.Data.Config, "client_ids")

	assert.Equal(t, 204, s.get(t, "/internal/v1/policy?revision="+rev).status)
	assert.Equal(t, 200, s.get(t, "/internal/v1/policy?revision=stale").status)
}

func TestInvitePermission(t *testing.T) {
	s := newStack(t, true)
	cases := []struct {
		name       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"stage 2 allow", `{"inviter":"@a:a.example.de","invitee":"@allowed:b.example.de"}`, 200, `{"allow":true,"stage":2,"reason":"on the release list"}`},
		{"stage 3 allow", `{"inviter":"@a:a.example.de","invitee":"@listed:b.example.de"}`, 200, `{"allow":true,"stage":3,"reason":"listed in the VZD"}`},
		{"refused", `{"inviter":"@a:a.example.de","invitee":"@nobody:b.example.de"}`, 200, `{"allow":false,"stage":3,"reason":"not listed"}`},
		{"undecidable fails closed", `{"inviter":"@a:a.example.de","invitee":"@broken:b.example.de"}`, 503, `{"errcode":"M_UNAVAILABLE","error":"invite permission could not be decided"}`},
		{"bad inviter", `{"inviter":"a:a.example.de","invitee":"@b:b.example.de"}`, 400, `{"errcode":"M_INVALID_PARAM","error":"inviter is not a valid MXID"}`},
		{"bad invitee", `{"inviter":"@a:a.example.de","invitee":"@b"}`, 400, `{"errcode":"M_INVALID_PARAM","error":"invitee is not a valid MXID"}`},
		{"missing invitee", `{"inviter":"@a:a.example.de"}`, 400, `{"errcode":"M_INVALID_PARAM","error":"invitee is not a valid MXID"}`},
		{"not JSON", `inviter=@a:b`, 400, `{"errcode":"M_NOT_JSON","error":"body must be {\"inviter\":\"@a:x\",\"invitee\":\"@b:y\"}"}`},
		{"too large", `{"inviter":"@a:a.example.de","pad":"` + strings.Repeat("x", 5000) + `"}`, 413, `{"errcode":"M_TOO_LARGE","error":"body too large"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := s.do(t, "POST", "/internal/v1/invite-permission", "Bearer "+secret, []byte(c.body))
			assert.Equal(t, c.wantStatus, a.status)
			assert.JSONEq(t, c.wantBody, string(a.body))
			assert.Contains(t, a.header.Get("Content-Type"), "application/json")
		})
	}
}
