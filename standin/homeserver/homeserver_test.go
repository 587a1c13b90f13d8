package homeserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, token string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestLoginOpenIDUserinfo(t *testing.T) {
	hs := New("hs.example.de", "admin-secret")
	srv := httptest.NewServer(hs)
	defer srv.Close()
	c := client{t, srv.URL}
	alice := hs.AddUser("alice", "pw")

	status, body := c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "wrong"})
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "M_FORBIDDEN", body["errcode"])

	status, body = c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "pw"})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, alice, body["user_id"])
	token := body["access_token"].(string)

	status, body = c.do("POST", "/_matrix/client/v3/user/"+alice+"/openid/request_token", token, map[string]any{})
	require.Equal(t, http.StatusOK, status)
	openid := body["access_token"].(string)

	status, body = c.do("GET", "/_matrix/federation/v1/openid/userinfo?access_token="+openid, "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, alice, body["sub"])

	status, body = c.do("GET", "/_matrix/federation/v1/openid/userinfo?access_token=nope", "", nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "M_UNKNOWN_TOKEN", body["errcode"])
}

func TestRoomsAndSeen(t *testing.T) {
	hs := New("hs.example.de", "")
	srv := httptest.NewServer(hs)
	defer srv.Close()
	c := client{t, srv.URL}
	hs.AddUser("bob", "pw")
	_, body := c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "bob", "password": "pw"})
	token := body["access_token"].(string)

	status, body := c.do("POST", "/_matrix/client/v3/createRoom", token, map[string]any{"invite": []string{"@x:other.de"}})
	require.Equal(t, http.StatusOK, status)
	room := body["room_id"].(string)
	status, _ = c.do("POST", "/_matrix/client/v3/rooms/"+room+"/invite", token, map[string]any{"user_id": "@y:other.de"})
	require.Equal(t, http.StatusOK, status)
	status, body = c.do("POST", "/_matrix/client/v3/rooms/!unknown:hs/invite", token, map[string]any{"user_id": "@y:other.de"})
	require.Equal(t, http.StatusForbidden, status)

	status, body = c.do("POST", "/_matrix/client/v3/createRoom", "bad-token", map[string]any{})
	require.Equal(t, http.StatusUnauthorized, status)
	status, body = c.do("GET", "/_matrix/nothing", "", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "M_UNRECOGNIZED", body["errcode"])

	require.Contains(t, hs.Seen(), "POST /_matrix/client/v3/createRoom")
	require.Contains(t, hs.Seen(), "GET /_matrix/nothing")
}

func TestAdminAccountData(t *testing.T) {
	hs := New("hs.example.de", "admin-secret")
	srv := httptest.NewServer(hs)
	defer srv.Close()
	c := client{t, srv.URL}
	alice := hs.AddUser("alice", "pw")
	hs.SetAccountData(alice, "de.gematik.tim.account.permissionconfig.pro.v1", map[string]any{"defaultSetting": "block all"})

	status, _ := c.do("GET", "/_synapse/admin/v1/users/"+alice+"/accountdata", "wrong", nil)
	require.Equal(t, http.StatusUnauthorized, status)
	status, body := c.do("GET", "/_synapse/admin/v1/users/"+alice+"/accountdata", "admin-secret", nil)
	require.Equal(t, http.StatusOK, status)
	global := body["account_data"].(map[string]any)["global"].(map[string]any)
	require.Equal(t, "block all", global["de.gematik.tim.account.permissionconfig.pro.v1"].(map[string]any)["defaultSetting"])
}

func TestFederationInviteEchoesEvent(t *testing.T) {
	hs := New("hs.example.de", "")
	srv := httptest.NewServer(hs)
	defer srv.Close()
	c := client{t, srv.URL}
	status, body := c.do("PUT", "/_matrix/federation/v2/invite/!r:x/$e", "", map[string]any{"event": map[string]any{"sender": "@a:x", "state_key": "@b:hs.example.de"}})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "@a:x", body["event"].(map[string]any)["sender"])
	status, body = c.do("PUT", "/_matrix/federation/v2/invite/!r:x/$e", "", nil)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "M_NOT_JSON", body["errcode"])
}
