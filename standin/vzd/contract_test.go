package vzd_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/internal/oascheck"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/standin/vzd/vzdcontract"
)

// The stand-in as served: every operation of I_VZD_TIM_Provider_Services 1.4.0 and the authenticate
// service, with the statuses the files name, answers valid against the files.
func TestStandinAgainstInterfaceFiles(t *testing.T) {
	cs := vzdcontract.New(t, standin.WithClient("tim-fd", "secret"), standin.WithLocation("@doc:a.example.de", "pract"),
		standin.WithDomains(standin.Domain{Domain: "a.example.de", TelematikID: "1-a"}))
	cs.VZD.AddDomain(standin.Domain{Domain: "foreign.example.de", TelematikID: "1-f", TimAnbieter: "ORG-0058:BT-0158"})
	c := client{t, cs.URL}

	// The token endpoint under the authenticate file's tokenUrl path (/realms/…) and the spec text's (/auth/realms/…).
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"tim-fd"}, "client_secret": {"secret"}}.Encode()
	for _, p := range []string{standin.RealmTokenPath, standin.TokenPath} {
		status, body := c.do("POST", p, "", "application/x-www-form-urlencoded", form)
		require.Equal(t, 200, status, p)
		var tok map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &tok))
		assert.NotEmpty(t, tok["access_token"], p)
	}
	oauth, prov := c.tokens()
	svc := standin.ServicesPath
	steps := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"authenticate", "GET", standin.AuthenticatePath, oauth, "", 200},
		{"authenticate with a provider token", "GET", standin.AuthenticatePath, prov, "", 401},
		{"getInfo", "GET", svc + "/", prov, "", 200},
		{"getFederationList", "GET", svc + "/FederationList/federationList.jws", prov, "", 200},
		{"getFederationList ES256", "GET", svc + "/FederationList/federationList.jws?sigAlg=ES256", prov, "", 200},
		{"getFederationList current", "GET", svc + "/FederationList/federationList.jws?version=99", prov, "", 204},
		{"whereIs", "GET", svc + "/localization?mxid=matrix:u/doc:a.example.de", prov, "", 200},
		{"whereIs unknown", "GET", svc + "/localization?mxid=matrix:u/x:a.example.de", prov, "", 404},
		{"whereIs malformed", "GET", svc + "/localization?mxid=doc", prov, "", 400},
		{"addTiMessengerDomain", "POST", svc + "/federation", prov, `{"domain":"new.example.de","telematikID":"1-n","isInsurance":false,"redirectDomains":["alt.example.de"]}`, 200},
		{"addTiMessengerDomain insurance", "POST", svc + "/federation", prov, `{"domain":"kk.example.de","telematikID":"8-k","isInsurance":true,"ik":["108433248"]}`, 200},
		{"addTiMessengerDomain exists", "POST", svc + "/federation", prov, `{"domain":"new.example.de","telematikID":"1-n","isInsurance":false}`, 409},
		{"addTiMessengerDomain inactive", "POST", svc + "/federation", prov, `{"domain":"x.example.de","telematikID":"inactive-1","isInsurance":false}`, 400},
		{"getTiMessengerDomain all", "GET", svc + "/federation", prov, "", 200},
		{"getTiMessengerDomain one", "GET", svc + "/federation?domain=new.example.de", prov, "", 200},
		{"getTiMessengerDomain unknown", "GET", svc + "/federation?domain=none.example.de", prov, "", 404},
		{"getTiMessengerDomain another provider's", "GET", svc + "/federation?domain=foreign.example.de", prov, "", 403},
		{"updateTiMessengerDomain", "PUT", svc + "/federation/new.example.de", prov, `{"domain":"new.example.de","telematikID":"1-n","isInsurance":false,"redirectDomains":["alt2.example.de"]}`, 200},
		{"updateTiMessengerDomain another provider's", "PUT", svc + "/federation/foreign.example.de", prov, `{"domain":"foreign.example.de","telematikID":"1-f","isInsurance":false}`, 403},
		{"updateTiMessengerDomain unknown", "PUT", svc + "/federation/none.example.de", prov, `{"domain":"none.example.de","telematikID":"1-f","isInsurance":false}`, 404},
		{"deleteTiMessengerDomain another provider's", "DELETE", svc + "/federation/foreign.example.de", prov, "", 403},
		{"deleteTiMessengerDomain", "DELETE", svc + "/federation/new.example.de", prov, "", 204},
		{"deleteTiMessengerDomain unknown", "DELETE", svc + "/federation/new.example.de", prov, "", 404},
		{"checkTiMessengerDomains", "GET", svc + "/federationCheck", prov, "", 204},
	}
	for _, s := range steps {
		ct := ""
		if s.body != "" {
			ct = "application/json"
		}
		status, body := c.do(s.method, s.path, s.token, ct, s.body)
		assert.Equal(t, s.want, status, "%s: %s", s.name, body)
	}
	cs.VZD.SetInactive("kk.example.de", true)
	status, _ := c.do("GET", svc+"/federationCheck", prov, "", "")
	assert.Equal(t, 200, status, "checkTiMessengerDomains with an inactive organisation")

	assert.Empty(t, cs.Services.Violations())
	assert.Empty(t, cs.Auth.Violations())
	assert.Equal(t, len(steps)+1-2, cs.Services.Checked())
	assert.Equal(t, 2+1, cs.Auth.Checked()) // the two steps and the exchange of c.tokens
}

// Requests outside the contract are refused with the file's status and a valid Error body.
func TestStandinRefusesWhatTheFilesForbid(t *testing.T) {
	cs := vzdcontract.New(t, standin.WithClient("tim-fd", "secret"))
	c := client{t, cs.URL}
	_, prov := c.tokens()
	svc := standin.ServicesPath
	bad := []struct{ name, body string }{
		{"empty ik", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":true,"ik":[]}`},
		{"read-only timAnbieter", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":false,"timAnbieter":"me"}`},
		{"repeated ik", `{"domain":"x.example.de","telematikID":"1-x","isInsurance":true,"ik":["1","1"]}`},
	}
	for _, b := range bad {
		status, body := c.do("POST", svc+"/federation", prov, "application/json", b.body)
		assert.Equal(t, 400, status, "%s: %s", b.name, body)
	}
	// kin-openapi agrees that each of these requests breaks the file, and that each answer keeps it.
	v := cs.Services.Violations()
	assert.Len(t, v, len(bad), "%v", v)
	for _, x := range v {
		assert.Contains(t, x, "request POST", x)
	}
	// isInsurance is required by the Domain schema; kin-openapi lets its default stand in for it, the
	// stand-in does not.
	cs.Services.Reset()
	status, body := c.do("POST", svc+"/federation", prov, "application/json", `{"domain":"x.example.de","telematikID":"1-x"}`)
	assert.Equal(t, 400, status, body)
	assert.Contains(t, body, "isInsurance is required")
	// No token: 401 with the file's Error body.
	status, _ = c.do("GET", svc+"/", "", "", "")
	assert.Equal(t, 401, status)
	v = cs.Services.Violations()
	require.Len(t, v, 1, "%v", v)
	assert.Contains(t, v[0], "security requirements failed")
	// Paths and methods the file lacks get JSON Error bodies, not text/plain.
	for _, p := range []struct{ method, path string }{{"GET", svc + "/nope"}, {"PATCH", svc + "/federation"}, {"GET", "/"}} {
		req, _ := http.NewRequest(p.method, cs.URL+p.path, nil)
		req.Header.Set("Authorization", "Bearer "+prov)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", p.method, p.path)
		assert.Contains(t, []int{404, 405}, resp.StatusCode)
	}
}

// The served list's payload keeps gematik's FederationList schema; with the real list's quirks on it
// deviates exactly as the real list does (timAnbieter null).
func TestListPayloadAgainstSchema(t *testing.T) {
	raw, err := oascheck.ReadFile("api-vzd/FederationList_main.json")
	require.NoError(t, err)
	var schema openapi3.Schema
	require.NoError(t, json.Unmarshal(raw, &schema))
	for _, q := range []standin.Quirks{{}, {NullTimAnbieter: true, IKs: true}} {
		sv, err := standin.New(standin.WithQuirks(q), standin.WithDomains(
			standin.Domain{Domain: "a.example.de", TelematikID: "1-a"},
			standin.Domain{Domain: "kk.example.de", TelematikID: "8-k", IsInsurance: true, IK: []string{"101"}}))
		require.NoError(t, err)
		sv.AddDomain(standin.Domain{Domain: "legacy.example.de", TelematikID: "1-l"})
		jws, _, err := sv.SignedList("BP256R1")
		require.NoError(t, err)
		var payload any
		require.NoError(t, json.Unmarshal(decodePayload(t, jws), &payload))
		err = schema.VisitJSON(payload, openapi3.MultiErrors())
		if q.NullTimAnbieter {
			require.Error(t, err)
			assert.Contains(t, err.Error(), "timAnbieter")
		} else {
			assert.NoError(t, err)
		}
	}
}
