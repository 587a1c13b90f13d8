package vzd_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/wasm/fedlist"
)

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, token, contentType, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(b)
}

func (c client) tokens() (oauth, provider string) {
	c.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"tim-fd"}, "client_secret": {"secret"}}.Encode()
	status, body := c.do("POST", standin.TokenPath, "", "application/x-www-form-urlencoded", form)
	require.Equal(c.t, 200, status, body)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	require.NoError(c.t, json.Unmarshal([]byte(body), &tok))
	require.Equal(c.t, "Bearer", tok.TokenType)
	status, body = c.do("GET", standin.AuthenticatePath, tok.AccessToken, "", "")
	require.Equal(c.t, 200, status, body)
	var prov struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	require.NoError(c.t, json.Unmarshal([]byte(body), &prov))
	require.Positive(c.t, prov.ExpiresIn)
	return tok.AccessToken, prov.AccessToken
}

func newServer(t *testing.T, opts ...standin.Option) (*standin.Server, client) {
	sv, err := standin.New(append([]standin.Option{standin.WithDomains(standin.Domain{Domain: "a.example.de", TelematikID: "1-a"})}, opts...)...)
	require.NoError(t, err)
	srv := httptest.NewServer(sv)
	t.Cleanup(srv.Close)
	return sv, client{t, srv.URL}
}

func TestEndpointsAndStatuses(t *testing.T) {
	sv, c := newServer(t, standin.WithLocation("@doc:a.example.de", "pract"))
	sv.AddDomain(standin.Domain{Domain: "foreign.example.de", TelematikID: "1-f", TimAnbieter: "ORG-0058:BT-0158"})
	oauth, prov := c.tokens()
	const svc = standin.ServicesPath
	cases := []struct {
		name, method, path, token, contentType, body string
		want                                         int
		wantBody                                     string // substring
	}{
		{"token wrong secret", "POST", standin.TokenPath, "", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=tim-fd&client_secret=x", 401, "invalid_client"},
		{"token wrong grant", "POST", standin.TokenPath, "", "application/x-www-form-urlencoded", "grant_type=password&client_id=tim-fd&client_secret=secret", 400, "unsupported_grant_type"},
		{"authenticate without token", "GET", standin.AuthenticatePath, "", "", "", 401, "OAuth2"},
		{"authenticate with provider token", "GET", standin.AuthenticatePath, prov, "", "", 401, "OAuth2"},
		{"services with OAuth2 token", "GET", svc + "/FederationList/federationList.jws", oauth, "", "", 401, "provider access token"},
		{"list", "GET", svc + "/FederationList/federationList.jws", prov, "", "", 200, "."},
		{"list ES256", "GET", svc + "/FederationList/federationList.jws?sigAlg=ES256", prov, "", "", 200, "."},
		{"list current", "GET", svc + "/FederationList/federationList.jws?version=2", prov, "", "", 204, ""},
		{"list bad version", "GET", svc + "/FederationList/federationList.jws?version=x", prov, "", "", 400, "version"},
		{"list bad sigAlg", "GET", svc + "/FederationList/federationList.jws?sigAlg=RS256", prov, "", "", 400, "sigAlg"},
		{"whereIs", "GET", svc + "/localization?mxid=matrix:u/doc:a.example.de", prov, "", "", 200, `"pract"`},
		{"whereIs unknown", "GET", svc + "/localization?mxid=matrix:u/x:a.example.de", prov, "", "", 404, "not found"},
		{"whereIs bad format", "GET", svc + "/localization?mxid=@doc:a.example.de", prov, "", "", 400, "matrix:u/"},
		{"add", "POST", svc + "/federation", prov, "application/json", `{"domain":"new.example.de","telematikID":"1-n","isInsurance":false,"redirectDomains":["old.example.de"]}`, 200, `"timAnbieter":"tim-fd"`},
		{"add again", "POST", svc + "/federation", prov, "application/json", `{"domain":"new.example.de","telematikID":"1-n","isInsurance":false}`, 409, "exists"},
		{"add inactive", "POST", svc + "/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"inactive-1","isInsurance":false}`, 400, "not active"},
		{"add without isInsurance", "POST", svc + "/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-x"}`, 400, "isInsurance is required"},
		{"add with read-only timAnbieter", "POST", svc + "/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":false,"timAnbieter":"me"}`, 400, "read-only"},
		{"add with empty ik", "POST", svc + "/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":true,"ik":[]}`, 400, "at least one"},
		{"add with repeated ik", "POST", svc + "/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":true,"ik":["1","1"]}`, 400, "unique"},
		{"add insurance without ik", "POST", svc + "/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":true}`, 400, "ik is required"},
		{"add as text/plain", "POST", svc + "/federation", prov, "text/plain", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":false}`, 400, "Content-Type"},
		{"get own domains", "GET", svc + "/federation", prov, "", "", 200, `"redirectDomains":["old.example.de"]`},
		{"get one domain", "GET", svc + "/federation?domain=new.example.de", prov, "", "", 200, `"timAnbieter":"tim-fd"`},
		{"get another provider's domain", "GET", svc + "/federation?domain=foreign.example.de", prov, "", "", 403, "another"},
		{"get unknown domain", "GET", svc + "/federation?domain=none.example.de", prov, "", "", 404, "not found"},
		{"update", "PUT", svc + "/federation/new.example.de", prov, "application/json", `{"domain":"new.example.de","telematikID":"1-n","isInsurance":true,"ik":["101"]}`, 200, `"ik":["101"]`},
		{"update other domain in body", "PUT", svc + "/federation/new.example.de", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-n","isInsurance":false}`, 400, "equal"},
		{"update another provider's domain", "PUT", svc + "/federation/foreign.example.de", prov, "application/json", `{"domain":"foreign.example.de","telematikID":"1-f","isInsurance":false}`, 403, "another"},
		{"update unknown", "PUT", svc + "/federation/none.example.de", prov, "application/json", `{"domain":"none.example.de","telematikID":"1-f","isInsurance":false}`, 404, "not found"},
		{"delete another provider's domain", "DELETE", svc + "/federation/foreign.example.de", prov, "", "", 403, "another"},
		{"info", "GET", svc + "/", prov, "", "", 200, `"version":"1.4.0"`},
		{"info without token", "GET", svc + "/", "", "", "", 401, "provider access token"},
		{"unknown path", "GET", svc + "/nope", prov, "", "", 404, `"message"`},
		{"wrong method", "PATCH", svc + "/federation", prov, "", "", 405, `"message"`},
		{"add not JSON", "POST", svc + "/federation", prov, "application/json", `{`, 400, "JSON"},
		{"list after add", "GET", svc + "/FederationList/federationList.jws?version=2", prov, "", "", 200, "."},
		{"check ok", "GET", svc + "/federationCheck", prov, "", "", 204, ""},
		{"delete", "DELETE", svc + "/federation/new.example.de", prov, "", "", 204, ""},
		{"delete unknown", "DELETE", svc + "/federation/new.example.de", prov, "", "", 404, "not found"},
		{"admin faults bad status", "POST", "/admin/faults", "", "application/json", `{"fail_status":200,"fail_count":1}`, 400, "fail_status"},
		{"admin localization bad", "POST", "/admin/localization", "", "application/json", `{"mxid":"@a:b","location":"moon"}`, 400, "location"},
		{"admin localization", "POST", "/admin/localization", "", "application/json", `{"mxid":"@new:a.example.de","location":"org"}`, 204, ""},
		{"whereIs after admin", "GET", svc + "/localization?mxid=matrix:u/new:a.example.de", prov, "", "", 200, `"org"`},
		{"admin faults", "POST", "/admin/faults", "", "application/json", `{"fail_status":502,"fail_count":1}`, 204, ""},
		{"faulted", "GET", svc + "/federationCheck", prov, "", "", 502, "injected"},
		{"fault used up", "GET", svc + "/federationCheck", prov, "", "", 204, ""},
		{"admin state", "GET", "/admin/state", "", "", "", 200, `"version":5`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do(tc.method, tc.path, tc.token, tc.contentType, tc.body)
			assert.Equal(t, tc.want, status, body)
			assert.Contains(t, body, tc.wantBody)
		})
	}
	assert.Equal(t, 1, sv.Stats().FaultsServed)
}

func TestListsVerifyAgainstTrustAnchor(t *testing.T) {
	sv, c := newServer(t)
	ts, err := fedlist.NewTrustStore(sv.TrustAnchorPEM())
	require.NoError(t, err)
	_, prov := c.tokens()
	for _, alg := range []string{"BP256R1", "ES256"} {
		status, body := c.do("GET", standin.ServicesPath+"/FederationList/federationList.jws?sigAlg="+alg, prov, "", "")
		require.Equal(t, 200, status)
		hdr, _, err := fedlist.ParseUnverified([]byte(body))
		require.NoError(t, err)
		assert.Equal(t, alg, hdr.Alg)
		l, err := fedlist.Verify([]byte(body), ts, time.Now())
		require.NoError(t, err, alg)
		assert.True(t, l.Contains("a.example.de"))
	}

	// Garbled lists still parse but fail verification.
	status, _ := c.do("POST", "/admin/faults", "", "application/json", `{"garble_jws":true}`)
	require.Equal(t, 204, status)
	_, body := c.do("GET", standin.ServicesPath+"/FederationList/federationList.jws", prov, "", "")
	_, _, err = fedlist.ParseUnverified([]byte(body))
	require.NoError(t, err)
	_, err = fedlist.Verify([]byte(body), ts, time.Now())
	assert.Error(t, err)
}

func TestRevokedAndExpiredTokens(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	sv, c := newServer(t, standin.WithTokenLifetimes(time.Minute, time.Minute), standin.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	_, prov := c.tokens()
	path := standin.ServicesPath + "/federationCheck"
	status, _ := c.do("GET", path, prov, "", "")
	assert.Equal(t, 204, status)
	now.Add(int64(2 * time.Minute))
	status, _ = c.do("GET", path, prov, "", "")
	assert.Equal(t, 401, status, "expired")

	_, prov = c.tokens()
	status, _ = c.do("POST", "/admin/revoke-tokens", "", "", "")
	assert.Equal(t, 204, status)
	status, _ = c.do("GET", path, prov, "", "")
	assert.Equal(t, 401, status, "revoked")
	assert.Equal(t, 2, sv.Stats().ProviderTokens)
}

// WithQuirks serves what gematik's real list holds: timAnbieter null and iks instead of ik. The filter's
// parser reads it.
func TestQuirksOfTheRealList(t *testing.T) {
	for _, q := range []standin.Quirks{{}, {NullTimAnbieter: true, IKs: true}} {
		sv, err := standin.New(standin.WithQuirks(q), standin.WithDomains(standin.Domain{Domain: "kk.example.de", TelematikID: "8-k", IsInsurance: true, IK: []string{"101"}}))
		require.NoError(t, err)
		sv.AddDomain(standin.Domain{Domain: "legacy.example.de", TelematikID: "1-l"}) // provider unknown
		jws, _, err := sv.SignedList("ES256")
		require.NoError(t, err)
		_, list, err := fedlist.ParseUnverified(jws)
		require.NoError(t, err)
		assert.Equal(t, []string{"101"}, list.Domains["kk.example.de"].IKs)
		assert.Equal(t, "", list.Domains["legacy.example.de"].Provider)
		payload := string(decodePayload(t, jws))
		if q.IKs {
			assert.Contains(t, payload, `"iks":["101"]`)
			assert.Contains(t, payload, `"iks":[]`)
			assert.NotContains(t, payload, `"ik":`)
		} else {
			assert.Contains(t, payload, `"ik":["101"]`)
			assert.NotContains(t, payload, `"iks"`)
		}
		if q.NullTimAnbieter {
			assert.Contains(t, payload, `"timAnbieter":null`)
		} else {
			assert.NotContains(t, payload, `null`)
		}
	}
}

func decodePayload(t *testing.T, jws []byte) []byte {
	t.Helper()
	parts := strings.Split(string(jws), ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	return b
}
