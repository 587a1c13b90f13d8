package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/orgadmin"
	"github.com/timfd/fachdienst/control/regtoken"
	"github.com/timfd/fachdienst/internal/localstack"
	"github.com/timfd/fachdienst/internal/regstack"
)

// The registration service end to end against a real Dendrite: an organisation onboards through the
// Org-Admin API (KIM), orders the homeserver's domain, the operator confirms it (A_23521), and its
// Org-Admin - logged in with password and TOTP - blocks a user (A_23613): the homeserver ends the
// user's session and refuses the login, the proxies refuse invites to the user; unblocking plus a new
// password restores the login. A second organisation (SMC-B through the IDP stand-in) cannot touch
// the first one's users. The RegService token from the API verifies with a verifier of its own.

const (
	regDomain   = "reg.localhost"
	orgPassword = "Blauer-Himmel-7-Wolken"
)

// orgAPI is an Org-Admin API client of one stack.
type orgAPI struct {
	t     *testing.T
	base  string
	token string
}

func (a *orgAPI) call(method, path string, in any) result {
	a.t.Helper()
	var body string
	if in != nil {
		b, _ := json.Marshal(in)
		body = string(b)
	}
	h := map[string]string{"Content-Type": "application/json"}
	if a.token != "" {
		h["Authorization"] = "Bearer " + a.token
	}
	return call(a.t, method, a.base+"/orgadmin/api/v1"+path, h, body)
}

func (a *orgAPI) want(r result, status int) map[string]any {
	a.t.Helper()
	if r.status != status {
		a.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if r.body == "" {
		return nil
	}
	return r.json(a.t)
}

// login signs the Org-Admin in with password and a TOTP code of the next time step (the enrolment
// used the current one; each step is accepted once).
func (a *orgAPI) login(username, secret string) {
	a.t.Helper()
	code, err := orgadmin.TOTPCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		a.t.Fatal(err)
	}
	a.token = ""
	out := a.want(a.call("POST", "/login", map[string]string{"username": username, "password": orgPassword, "totp_code": code}), http.StatusOK)
	a.token, _ = out["token"].(string)
	if a.token == "" {
		a.t.Fatalf("login: no session token in %v", out)
	}
}

// onboardKIM creates the Org-Admin of the KIM directory's demo organisation through the API. The
// authentication mail must reach the mail sink with the link it names.
func onboardKIM(t *testing.T, st *localstack.Stack, username string) (*orgAPI, string) {
	t.Helper()
	if st.Registration.Mail == nil {
		t.Fatalf("mail sink not running: %v", st.Registration.MailErr)
	}
	a := &orgAPI{t: t, base: st.ControlURL}
	out := a.want(a.call("POST", "/onboarding/kim", map[string]string{"kim_address": regstack.KIMAddress}), http.StatusCreated)
	id, _ := out["challenge_id"].(string)
	code, _ := out["code"].(string)
	var mails []string
	eventually(t, "the KIM authentication mail in the sink", func() bool {
		msgs, err := st.Registration.Mail.Messages(context.Background(), regstack.KIMAddress)
		mails = mails[:0]
		for _, m := range msgs {
			mails = append(mails, m.Text)
		}
		return err == nil && len(msgs) > 0
	})
	if !strings.Contains(mails[0], "/orgadmin/onboarding/kim/"+id) {
		t.Fatalf("the mail does not carry the link of challenge %s:\n%s", id, mails[0])
	}
	out = a.want(a.call("POST", "/onboarding/kim/"+id, map[string]string{"code": code}), http.StatusOK)
	ticket, _ := out["ticket"].(string)
	out = a.want(a.call("POST", "/account", map[string]string{"ticket": ticket, "username": username, "password": orgPassword}), http.StatusOK)
	secret, _ := out["totp_secret"].(string)
	now, _ := orgadmin.TOTPCode(secret, time.Now())
	a.want(a.call("POST", "/account/confirm", map[string]string{"ticket": ticket, "totp_code": now}), http.StatusCreated)
	a.login(username, secret)
	return a, secret
}

// loopJar keeps cookies per host, Secure ones included: the portal is on loopback http here.
type loopJar struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

func (j *loopJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.m[u.Host] == nil {
		j.m[u.Host] = map[string]string{}
	}
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.m[u.Host], c.Name)
		} else {
			j.m[u.Host][c.Name] = c.Value
		}
	}
}

func (j *loopJar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for n, v := range j.m[u.Host] {
		out = append(out, &http.Cookie{Name: n, Value: v})
	}
	return out
}

var (
	csrfField   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	totpSecretE = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
)

// onboardOIDC creates the Org-Admin of the IDP stand-in's organisation through the portal's pages
// (SMC-B sign-in by OpenID Connect), then signs in to the API.
func onboardOIDC(t *testing.T, st *localstack.Stack, username string) *orgAPI {
	t.Helper()
	c := &http.Client{Jar: &loopJar{m: map[string]map[string]string{}}, Timeout: 20 * time.Second}
	last := ""
	do := func(method, path string, form url.Values, want string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			m := csrfField.FindStringSubmatch(last)
			if m == nil {
				t.Fatalf("no CSRF token on the page before %s", path)
			}
			form.Set("csrf_token", m[1])
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, st.ControlURL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(b)
		if resp.StatusCode != http.StatusOK || !strings.Contains(last, want) {
			t.Fatalf("%s %s: %d, want 200 with %q:\n%s", method, path, resp.StatusCode, want, last)
		}
	}
	do("GET", "/orgadmin/", nil, "Authenticate with the SMC-B")
	do("POST", "/orgadmin/onboarding/oidc", url.Values{}, "Create the Org-Admin account")
	do("POST", "/orgadmin/account/new", url.Values{"username": {username}, "password": {orgPassword}, "password_confirm": {orgPassword}}, "Set up the second factor")
	m := totpSecretE.FindStringSubmatch(last)
	if m == nil {
		t.Fatal("no TOTP secret on the enrolment page")
	}
	code, _ := orgadmin.TOTPCode(m[1], time.Now())
	do("POST", "/orgadmin/account/totp", url.Values{"totp_code": {code}}, "Messenger services")
	a := &orgAPI{t: t, base: st.ControlURL}
	a.login(username, m[1])
	return a
}

// verifyRegToken checks the RegService token with nothing of regtoken's signing code: x5c must be the
// C.FD.SIG certificate of the data folder, the ECDSA signature (r||s over SHA-256 of header.payload)
// must verify with that certificate's key, and the claims must name the organisation.
func verifyRegToken(t *testing.T, st *localstack.Stack, tok, telematikID, professionOID string) {
	t.Helper()
	dir := filepath.Join(dataDirOf(t, st), "regtoken")
	certPEM, err := os.ReadFile(filepath.Join(dir, "cfd-sig.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	keyPEM, err := os.ReadFile(filepath.Join(dir, "cfd-sig.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// The key file's public half is the certificate's (checked by comparing with x5c below and by
	// the signature); crypto/x509 cannot read brainpool certificates.
	key, err := regtoken.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("base64url: %v", err)
		}
		return b
	}
	var hdr struct {
		Alg string   `json:"alg"`
		Typ string   `json:"typ"`
		X5C []string `json:"x5c"`
	}
	var claims map[string]any
	if json.Unmarshal(dec(parts[0]), &hdr) != nil || json.Unmarshal(dec(parts[1]), &claims) != nil {
		t.Fatal("header or claims are not JSON")
	}
	if hdr.Alg != "BP256R1" || hdr.Typ != "JWT" || len(hdr.X5C) != 1 {
		t.Fatalf("header = %+v", hdr)
	}
	if der, _ := base64.StdEncoding.DecodeString(hdr.X5C[0]); string(der) != string(blk.Bytes) {
		t.Fatal("x5c is not the C.FD.SIG certificate")
	}
	verify := func(signingInput string, sig []byte) bool {
		if len(sig) != 64 {
			return false
		}
		d := sha256.Sum256([]byte(signingInput))
		return ecdsa.Verify(&key.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	if !verify(parts[0]+"."+parts[1], dec(parts[2])) {
		t.Fatal("the token's signature does not verify")
	}
	forged := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(dec(parts[1])), telematikID, "9-forged", -1)))
	if verify(parts[0]+"."+forged, dec(parts[2])) {
		t.Fatal("a forged token verifies")
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["sub"] != telematikID || claims["idNummer"] != telematikID || claims["professionOID"] != professionOID ||
		claims["iss"] != st.ControlURL+"/orgadmin/api/v1/token" || claims["aud"] != st.VZDURL+"/owner-authenticate" ||
		exp <= iat || exp-iat > 3600 {
		t.Fatalf("claims = %v", claims)
	}
}

// dataDirOf finds the stack's data folder from its local CA file.
func dataDirOf(t *testing.T, st *localstack.Stack) string {
	t.Helper()
	return filepath.Dir(filepath.Dir(st.CACertFile()))
}

func TestOrgAdminBlocksUser(t *testing.T) {
	requireDendrite(t)
	ctx := context.Background()
	// The homeserver's domain is not in the federation yet: its organisation orders it.
	vzd, err := localstack.NewVZD(localstack.ExampleDomains...)
	if err != nil {
		t.Fatal(err)
	}
	vzdSrv := httptest.NewServer(vzd)
	t.Cleanup(vzdSrv.Close)
	st, err := localstack.Start(ctx, localstack.Options{
		DataDir: t.TempDir(), ServerName: regDomain, NoPush: true, VZD: vzd, VZDURL: vzdSrv.URL, RefetchMinInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Close(cctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	alice, bob := st.Users[0], st.Users[1]

	// Organisation 1 (KIM) orders the homeserver's domain; the operator confirms it out of band.
	org1, _ := onboardKIM(t, st, "klinik-admin")
	org1.want(org1.call("POST", "/services", map[string]string{"domain": regDomain}), http.StatusAccepted)
	r := call(t, "POST", st.ControlInternalURL+"/internal/v1/registration/services/"+regDomain+"/approve",
		map[string]string{"Authorization": "Bearer " + st.InternalSecret}, "")
	if r.status/100 != 2 {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	if s := org1.want(org1.call("GET", "/services/"+regDomain, nil), http.StatusOK); s["status"] != "active" {
		t.Fatalf("service after approval: %v", s)
	}
	inFederation := false
	for _, d := range vzd.Domains() {
		inFederation = inFederation || (d.Domain == regDomain && d.TelematikID == regstack.Klinik.TelematikID)
	}
	if !inFederation {
		t.Fatal("the approved domain is not in the VZD's federation under the organisation")
	}

	t.Run("RegServiceToken", func(t *testing.T) {
		out := org1.want(org1.call("POST", "/token", nil), http.StatusOK)
		tok, _ := out["token"].(string)
		verifyRegToken(t, st, tok, regstack.Klinik.TelematikID, regstack.Klinik.ProfessionOID)
	})

	aliceTok := login(t, st, alice)
	bobTok := login(t, st, bob)
	whoami := func(tok string) int {
		return call(t, "GET", st.ClientURL+"/_matrix/client/v3/account/whoami", map[string]string{"User-Agent": approvedUA, "Authorization": "Bearer " + tok}, "").status
	}
	if s := whoami(bobTok); s != http.StatusOK {
		t.Fatalf("bob's session before the block: %d", s)
	}
	room := createRoom(t, st, aliceTok)
	if room.status != http.StatusOK {
		t.Fatalf("createRoom: %d %s", room.status, room.body)
	}
	roomID, _ := room.json(t)["room_id"].(string)
	invite := func() result {
		return call(t, "POST", st.ClientURL+"/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/invite",
			map[string]string{"User-Agent": approvedUA, "Authorization": "Bearer " + aliceTok}, fmt.Sprintf(`{"user_id":%q}`, bob.MXID))
	}
	bobMembership := func() int { // status of reading bob's member event on the homeserver itself
		return call(t, "GET", st.HomeserverURL+"/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/state/m.room.member/"+url.PathEscape(bob.MXID),
			map[string]string{"Authorization": "Bearer " + aliceTok}, "").status
	}
	loginStatus := func(u localstack.User, pw string) int {
		local := strings.TrimPrefix(strings.SplitN(u.MXID, ":", 2)[0], "@")
		return call(t, "POST", st.ClientURL+"/_matrix/client/v3/login", map[string]string{"User-Agent": approvedUA},
			fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":%q},"password":%q}`, local, pw)).status
	}

	// Organisation 2 (SMC-B) exists before the block and may touch none of organisation 1's users.
	org2 := onboardOIDC(t, st, "praxis-admin")

	// The block.
	org1.want(org1.call("POST", "/users/block", map[string]string{"mxid": bob.MXID}), http.StatusNoContent)
	if s := whoami(bobTok); s != http.StatusUnauthorized {
		t.Fatalf("bob's session after the block: %d, want 401", s)
	}
	if s := call(t, "GET", st.HomeserverURL+"/_matrix/client/v3/account/whoami", map[string]string{"Authorization": "Bearer " + bobTok}, "").status; s != http.StatusUnauthorized {
		t.Fatalf("bob's session at the homeserver itself: %d, want 401", s)
	}
	if s := loginStatus(bob, bob.Password); s == http.StatusOK {
		t.Fatal("bob logged in again while blocked")
	}
	list := org1.want(org1.call("GET", "/users/blocked", nil), http.StatusOK)
	if users, _ := list["users"].([]any); len(users) != 1 || users[0].(map[string]any)["mxid"] != bob.MXID {
		t.Fatalf("blocked list: %v", list)
	}
	// The proxies take the blocked set with the next policy revision they fetch (until then the
	// homeserver's refusal of the user's session and login stands alone). Probed with invites into a
	// room that does not exist, so that nothing is created while the revision travels; every worker
	// of the proxy must have it.
	blockedBody := `"This user is blocked by the organisation"`
	probe := func() result {
		return call(t, "POST", st.ClientURL+"/_matrix/client/v3/rooms/"+url.PathEscape("!no-such-room:"+regDomain)+"/invite",
			map[string]string{"User-Agent": approvedUA, "Authorization": "Bearer " + aliceTok}, fmt.Sprintf(`{"user_id":%q}`, bob.MXID))
	}
	allWorkers := func(blocked bool) func() bool {
		return func() bool {
			for range st.Proxies["client"].Workers() {
				if strings.Contains(probe().body, blockedBody) != blocked {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "every client-server proxy worker holds the blocked set", allWorkers(true))
	wantJSON(t, invite(), http.StatusForbidden, map[string]any{"errcode": "M_FORBIDDEN", "error": "This user is blocked by the organisation"})
	if s := bobMembership(); s != http.StatusNotFound {
		t.Fatalf("the homeserver holds a membership of the blocked user: %d", s)
	}
	// The server-server listener refuses an inbound invite to the blocked user before it asks the
	// control plane (a forged signature would be the homeserver's to refuse; this never gets there).
	n := 0
	eventually(t, "every server-server proxy worker refuses invites to the blocked user", func() bool {
		for range st.Proxies["federation"].Workers() {
			n++
			if r := federationInvite(t, st, "@doc:"+federated, bob.MXID, n); r.status != http.StatusForbidden || !strings.Contains(r.body, blockedBody) {
				return false
			}
		}
		return true
	})
	// createRoom's invite is a membership as well.
	if r := createRoom(t, st, aliceTok, bob.MXID); r.status != http.StatusForbidden {
		t.Fatalf("createRoom inviting the blocked user: %d %s", r.status, r.body)
	}

	t.Run("CrossOrganisation", func(t *testing.T) {
		for _, action := range []string{"block", "unblock", "end-sessions"} {
			for _, u := range []string{alice.MXID, bob.MXID} {
				org2.want(org2.call("POST", "/users/"+action, map[string]string{"mxid": u}), http.StatusNotFound)
			}
		}
		if list := org2.want(org2.call("GET", "/users/blocked", nil), http.StatusOK); len(list["users"].([]any)) != 0 {
			t.Fatalf("organisation 2 sees blocked users: %v", list)
		}
		org2.want(org2.call("GET", "/services/"+regDomain, nil), http.StatusNotFound)
		if s := whoami(aliceTok); s != http.StatusOK {
			t.Fatalf("alice's session after organisation 2's attempts: %d", s)
		}
	})

	// Unblock, and a new password (Dendrite's block replaced the old one), which the Org-Admin can set
	// only once the user is unblocked.
	const newPassword = "Gruener-Baum-8-Blaetter"
	org1.want(org1.call("POST", "/users/password", map[string]string{"mxid": bob.MXID, "password": newPassword}), http.StatusConflict)
	org1.want(org1.call("POST", "/users/unblock", map[string]string{"mxid": bob.MXID}), http.StatusNoContent)
	org1.want(org1.call("POST", "/users/password", map[string]string{"mxid": bob.MXID, "password": newPassword}), http.StatusNoContent)
	if s := loginStatus(bob, newPassword); s != http.StatusOK {
		t.Fatalf("bob's login after unblocking: %d", s)
	}
	eventually(t, "every client-server proxy worker has dropped the block", allWorkers(false))
	if r := invite(); r.status != http.StatusOK {
		t.Fatalf("invite of the unblocked user: %d %s", r.status, r.body)
	}
	if s := bobMembership(); s != http.StatusOK {
		t.Fatalf("no membership of the unblocked user on the homeserver: %d", s)
	}
	if list := org1.want(org1.call("GET", "/users/blocked", nil), http.StatusOK); len(list["users"].([]any)) != 0 {
		t.Fatalf("blocked list after unblocking: %v", list)
	}
}

// In the local run the VZD stand-in lists the homeserver's domain for the KIM demo organisation: its
// Org-Admin orders it, and the operator's approval takes the entry over (the VZD's 409 for the
// organisation's own entry), so that the portal can block the demo users.
func TestLocalRunOwnDomainTakenOver(t *testing.T) {
	requireDendrite(t)
	st, err := localstack.Start(context.Background(), localstack.Options{DataDir: t.TempDir(), NoPush: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Close(cctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	org, _ := onboardKIM(t, st, "klinik-admin")
	org.want(org.call("POST", "/services", map[string]string{"domain": st.ServerName}), http.StatusAccepted)
	secret, err := os.ReadFile(filepath.Join(dataDirOf(t, st), "internal-secret"))
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, "POST", st.ControlInternalURL+"/internal/v1/registration/services/"+st.ServerName+"/approve",
		map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(secret))}, "")
	if r.status != http.StatusOK {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	if s := org.want(org.call("GET", "/services/"+st.ServerName, nil), http.StatusOK); s["status"] != "active" {
		t.Fatalf("service: %v", s)
	}
	org.want(org.call("POST", "/users/end-sessions", map[string]string{"mxid": st.Users[0].MXID}), http.StatusNoContent)
}
