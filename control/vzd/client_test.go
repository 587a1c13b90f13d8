package vzd_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/vzd"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

type fixture struct {
	vzd     *standin.Server
	srv     *httptest.Server
	client  *vzd.Client
	metrics *vzd.Metrics
	logs    *bytes.Buffer
	now     *fakeNow
}

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

var domains = []standin.Domain{
	{Domain: "a.example.de", TelematikID: "1-a"},
	{Domain: "b.example.de", TelematikID: "1-b", IsInsurance: true, IK: []string{"101"}},
}

// newFixture starts the VZD stand-in behind TLS and a client that trusts it. mutate may adjust the client
// configuration.
func newFixture(t *testing.T, opts []standin.Option, mutate func(*vzd.Config)) *fixture {
	t.Helper()
	sv, err := standin.New(append([]standin.Option{standin.WithDomains(domains...), standin.WithClient("fd", "s3cret")}, opts...)...)
	require.NoError(t, err)
	srv := httptest.NewTLSServer(sv)
	t.Cleanup(srv.Close)
	f := &fixture{vzd: sv, srv: srv, metrics: vzd.NewMetrics(nil), logs: &bytes.Buffer{}, now: &fakeNow{t: time.Now()}}
	cfg := vzd.Config{
		BaseURL: srv.URL, ClientID: "fd", ClientSecret: "s3cret",
		HTTPClient:  srv.Client(), // trusts the test server's certificate
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 3,
		Metrics: f.metrics, Now: f.now.Now,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	f.client, err = vzd.New(cfg)
	require.NoError(t, err)
	return f
}

func (f *fixture) count(op, outcome string) int {
	return f.metrics.Count(op, outcome)
}

func TestFederationListVersionsAndSignature(t *testing.T) {
	for _, alg := range []string{"BP256R1", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, nil, func(c *vzd.Config) { c.SigAlg = alg })
			ts, err := fedlist.NewTrustStore(f.vzd.TrustAnchorPEM())
			require.NoError(t, err)
			ctx := context.Background()

			jws, current, err := f.client.FederationList(ctx, 0)
			require.NoError(t, err)
			assert.False(t, current)
			hdr, _, err := fedlist.ParseUnverified(jws)
			require.NoError(t, err)
			assert.Equal(t, alg, hdr.Alg)
			l, err := fedlist.Verify(jws, ts, time.Now())
			require.NoError(t, err)
			assert.Equal(t, int64(1), l.Version)
			assert.True(t, l.Contains("b.example.de"))

			jws, current, err = f.client.FederationList(ctx, 1)
			require.NoError(t, err)
			assert.True(t, current, "version 1 is current: 204")
			assert.Nil(t, jws)

			_, err = f.client.AddDomain(ctx, vzd.Domain{Domain: "new.example.de", TelematikID: "1-new"})
			require.NoError(t, err)
			jws, current, err = f.client.FederationList(ctx, 1)
			require.NoError(t, err)
			require.False(t, current)
			l, err = fedlist.Verify(jws, ts, time.Now())
			require.NoError(t, err)
			assert.Equal(t, int64(2), l.Version)
			assert.True(t, l.Contains("new.example.de"))
			assert.Equal(t, 1, f.count("federation_list", "204"))
			assert.Equal(t, 2, f.count("federation_list", "200"))
		})
	}
}

func TestDomainAdministration(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := context.Background()
	cases := []struct {
		name   string
		domain vzd.Domain
		want   error
	}{
		{"added", vzd.Domain{Domain: "c.example.de", TelematikID: "1-c"}, nil},
		{"already exists", vzd.Domain{Domain: "a.example.de", TelematikID: "1-a"}, vzd.ErrConflict},
		{"inactive organisation", vzd.Domain{Domain: "d.example.de", TelematikID: "inactive-1"}, vzd.ErrBadRequest},
		{"missing telematikID", vzd.Domain{Domain: "e.example.de"}, vzd.ErrBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.client.AddDomain(ctx, c.domain)
			if c.want == nil {
				require.NoError(t, err)
				assert.Equal(t, c.domain.Domain, got.Domain)
				assert.Equal(t, "fd", got.TimAnbieter)
				return
			}
			require.ErrorIs(t, err, c.want)
			var ae *vzd.APIError
			require.ErrorAs(t, err, &ae)
			for _, other := range []error{vzd.ErrConflict, vzd.ErrBadRequest} {
				if other != c.want {
					assert.NotErrorIs(t, err, other, "400 and 409 must be told apart")
				}
			}
		})
	}
	require.NoError(t, f.client.DeleteDomain(ctx, "c.example.de"))
	assert.ErrorIs(t, f.client.DeleteDomain(ctx, "c.example.de"), vzd.ErrNotFound)
	assert.ErrorIs(t, f.client.DeleteDomain(ctx, "x/../y"), vzd.ErrBadRequest)
	assert.Equal(t, int64(3), f.vzd.Stats().Version, "one add and one delete")
}

func TestFederationCheck(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := context.Background()
	_, err := f.client.AddDomain(ctx, vzd.Domain{Domain: "own.example.de", TelematikID: "1-own"})
	require.NoError(t, err)
	inactive, err := f.client.FederationCheck(ctx)
	require.NoError(t, err)
	assert.Empty(t, inactive)

	f.vzd.SetInactive("own.example.de", true)
	inactive, err = f.client.FederationCheck(ctx)
	require.NoError(t, err)
	require.Len(t, inactive, 1)
	assert.Equal(t, "own.example.de", inactive[0].Domain)
}

func TestLocalize(t *testing.T) {
	f := newFixture(t, []standin.Option{
		standin.WithLocation("@org:a.example.de", "org"),
		standin.WithLocation("@doc:a.example.de", "pract"),
		standin.WithLocation("@both:a.example.de", "orgPract"),
		standin.WithLocation("@hidden:a.example.de", "none"),
	}, nil)
	cases := []struct {
		mxid    string
		want    vzd.Result
		org     bool
		pract   bool
		wantErr error
	}{
		{"@org:a.example.de", vzd.Org, true, false, nil},
		{"@doc:a.example.de", vzd.Pract, false, true, nil},
		{"@both:a.example.de", vzd.OrgPract, true, true, nil},
		{"@hidden:a.example.de", vzd.None, false, false, nil},
		{"@unknown:a.example.de", vzd.None, false, false, nil}, // 404: not in the directory
		{"not-an-mxid", vzd.None, false, false, vzd.ErrBadRequest},
		{"@:a.example.de", vzd.None, false, false, vzd.ErrBadRequest},
	}
	for _, c := range cases {
		t.Run(c.mxid, func(t *testing.T) {
			got, err := f.client.Localize(context.Background(), c.mxid)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.org, got.InOrg())
			assert.Equal(t, c.pract, got.InPract())
		})
	}
	assert.NotContains(t, f.logs.String(), "org:a.example.de", "MXIDs stay out of the log")
}

func TestRetriesOnlyServerErrors(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		count      int
		wantErr    error // nil: the call succeeds after the faults
		wantFaults int
	}{
		{"two 503 then success", 503, 2, nil, 2},
		{"500 forever gives up after max attempts", 500, -1, errors.New("any"), 3},
		{"400 is not retried", 400, -1, vzd.ErrBadRequest, 1},
		{"403 is not retried", 403, -1, vzd.ErrForbidden, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			ctx := context.Background()
			// Obtain the tokens first so that the faults hit the list endpoint only.
			_, _, err := f.client.FederationList(ctx, 0)
			require.NoError(t, err)
			f.vzd.SetFaults(standin.Faults{FailStatus: c.status, FailCount: c.count})
			_, _, err = f.client.FederationList(ctx, 0)
			if c.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				if !strings.HasPrefix(c.wantErr.Error(), "any") {
					require.ErrorIs(t, err, c.wantErr)
				}
			}
			assert.Equal(t, c.wantFaults, f.vzd.Stats().FaultsServed)
			assert.Equal(t, c.wantFaults, f.count("federation_list", strconv.Itoa(c.status)))
		})
	}
}

// flakyTransport fails the first n requests to the provider services with a network error.
type flakyTransport struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (t *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, standin.ServicesPath) && t.n.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	return t.next.RoundTrip(r)
}

func TestRetriesNetworkErrors(t *testing.T) {
	var ft *flakyTransport
	f := newFixture(t, nil, func(c *vzd.Config) {
		ft = &flakyTransport{next: c.HTTPClient.Transport}
		ft.n.Store(2)
		c.HTTPClient = &http.Client{Transport: ft}
	})
	jws, _, err := f.client.FederationList(context.Background(), 0)
	require.NoError(t, err)
	assert.NotEmpty(t, jws)
	assert.Equal(t, 2, f.count("federation_list", "network_error"))
	assert.Equal(t, 1, f.count("federation_list", "200"))
}

func TestTimeoutCountsAndFails(t *testing.T) {
	f := newFixture(t, nil, func(c *vzd.Config) { c.Timeout = 20 * time.Millisecond; c.MaxAttempts = 2 })
	// Tokens first, without delay.
	_, _, err := f.client.FederationList(context.Background(), 0)
	require.NoError(t, err)
	f.vzd.SetFaults(standin.Faults{Delay: 300 * time.Millisecond})
	_, _, err = f.client.FederationList(context.Background(), 0)
	require.Error(t, err)
	assert.Equal(t, 2, f.count("federation_list", "timeout"))
}

func TestProviderTokenCachedAndRenewed(t *testing.T) {
	f := newFixture(t, []standin.Option{standin.WithTokenLifetimes(time.Hour, time.Hour)}, nil)
	ctx := context.Background()
	for range 3 {
		_, _, err := f.client.FederationList(ctx, 0)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, f.vzd.Stats().ProviderTokens, "the provider token is cached")

	// Shortly before expiry (RenewBefore 60 s) a new token is fetched before the call.
	f.now.Advance(time.Hour - 30*time.Second)
	_, _, err := f.client.FederationList(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, f.vzd.Stats().ProviderTokens)

	// A VZD that forgot every token answers 401: the client re-authenticates (new OAuth2 token too) once.
	f.vzd.RevokeTokens()
	_, _, err = f.client.FederationList(ctx, 0)
	require.NoError(t, err)
	st := f.vzd.Stats()
	assert.Equal(t, 3, st.ProviderTokens)
	assert.Equal(t, 2, st.OAuthTokens)

	logs := f.logs.String()
	assert.Contains(t, logs, "provider token renewed")
	assert.NotContains(t, logs, "prov-", "no provider token in the log")
	assert.NotContains(t, logs, "oauth-", "no OAuth2 token in the log")
	assert.NotContains(t, logs, "s3cret")
}

func TestWrongCredentialsFail(t *testing.T) {
	f := newFixture(t, nil, func(c *vzd.Config) { c.ClientSecret = "wrong" })
	_, _, err := f.client.FederationList(context.Background(), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401")
	assert.Equal(t, 0, f.vzd.Stats().ProviderTokens)
}

func TestRootCAs(t *testing.T) {
	sv, err := standin.New(standin.WithDomains(domains...))
	require.NoError(t, err)
	srv := httptest.NewTLSServer(sv)
	defer srv.Close()
	ctx := context.Background()

	untrusting, err := vzd.New(vzd.Config{BaseURL: srv.URL, ClientID: "tim-fd", ClientSecret: "secret", MaxAttempts: 1})
	require.NoError(t, err)
	_, _, err = untrusting.FederationList(ctx, 0)
	require.Error(t, err, "the test server's certificate is not in the system roots")

	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	trusting, err := vzd.New(vzd.Config{BaseURL: srv.URL, ClientID: "tim-fd", ClientSecret: "secret", RootCAsPEM: rootPEM})
	require.NoError(t, err)
	_, _, err = trusting.FederationList(ctx, 0)
	require.NoError(t, err)

	_, err = vzd.New(vzd.Config{BaseURL: srv.URL, ClientID: "a", ClientSecret: "b", RootCAsPEM: []byte("garbage")})
	require.Error(t, err)
}

func TestBaseURLMayNameTheServices(t *testing.T) {
	f := newFixture(t, nil, func(c *vzd.Config) { c.BaseURL += standin.ServicesPath + "/" })
	_, _, err := f.client.FederationList(context.Background(), 0)
	require.NoError(t, err)
	assert.Equal(t, 1, f.count("federation_list", "200"))
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  vzd.Config
	}{
		{"no URL", vzd.Config{ClientID: "a", ClientSecret: "b"}},
		{"bad scheme", vzd.Config{BaseURL: "ftp://x", ClientID: "a", ClientSecret: "b"}},
		{"no credentials", vzd.Config{BaseURL: "https://vzd.example"}},
		{"bad sigAlg", vzd.Config{BaseURL: "https://vzd.example", ClientID: "a", ClientSecret: "b", SigAlg: "RS256"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := vzd.New(c.cfg)
			assert.Error(t, err)
		})
	}
}
