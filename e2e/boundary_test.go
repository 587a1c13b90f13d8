package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/timfd/fachdienst/internal/localstack"
	vzdstandin "github.com/timfd/fachdienst/standin/vzd"
)

// E is a federated organisation whose server name is delegated: its /.well-known/matrix/server
// names another host (as TI-M 5.1.2.2.1 has providers announce host and port), which is in no
// federation list. A's egress learns the delegation from E's well-known answer as it passes.
const (
	domE  = "e.localhost"
	hostE = "e-host.localhost"
)

func xm(origin, dest string) string {
	return `X-Matrix origin="` + origin + `",destination="` + dest + `",key="ed25519:auto",sig="c2ln"`
}

// TestProxyBoundaries holds the cases where the proxies decide at the edge of what is allowed,
// each against real Dendrites: server-name delegation on egress, and the bypasses of
// docs/decisions/filter.md F20 (B1–B9), each asserting what the homeservers hold afterwards.
func TestProxyBoundaries(t *testing.T) {
	requireDendrite(t)
	ctx := context.Background()
	f := startFederation(t)
	alice := f.user(t, domA, "alice")
	aliceHS := f.onHomeserver(t, alice)

	t.Run("delegated server name: reachable through the host its well-known names", func(t *testing.T) {
		f.vzd.AddDomain(vzdstandin.Domain{Domain: domE, TelematikID: "1-2-e2e-e", TimAnbieter: "Provider E"})
		for _, st := range []*localstack.Stack{f.a, f.b} {
			if err := st.Control.Fed.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e := f.peer(t, domE, hostE+":8448", &statusLog{m: map[string][]int{}})
		// A's forwarder finds E's homeserver under both names, as DNS would.
		f.a.Routes.Set(domE, mustURL(e.URL))
		f.a.Routes.Set(hostE, mustURL(e.URL))
		erin := f.user(t, domE, "erin")

		// Before A's homeserver has resolved E, the delegated host is a host like any other.
		r := egressThroughTunnel(t, f.a, "HTTP/1.1", hostE, "/_matrix/federation/v1/version", xm(domA, domE))
		wantJSON(t, r, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "The other party could not be contacted"})

		// A's proxies take up the list naming E when they next fetch it (a refused domain makes them
		// fetch at once, each worker for itself).
		eventually(t, "A's egress reaches E under its own name", func() bool {
			return egressThroughTunnel(t, f.a, "HTTP/1.1", domE, "/_matrix/federation/v1/version", xm(domA, domE)).status == 200
		})
		var resp *mautrix.RespCreateRoom
		eventually(t, "A's client-server proxy lets alice invite erin", func() bool {
			var err error
			resp, err = alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{erin.UserID}})
			if err != nil && !strings.Contains(err.Error(), domE+" could not be invited") {
				t.Fatalf("createRoom: %v", err)
			}
			return err == nil
		})
		eventually(t, "E's homeserver holds the invite", func() bool { return invites(t, f.onHomeserver(t, erin))[resp.RoomID] })
		if _, err := erin.JoinRoomByID(ctx, resp.RoomID); err != nil {
			t.Fatalf("erin's join: %v", err)
		}
		eventually(t, "A holds erin's join", func() bool { return membership(t, aliceHS, resp.RoomID, erin.UserID) == "join" })

		// Now the delegated host takes requests for E, signed or not (key fetches), and for E only.
		for _, c := range []struct {
			name, path, xmatrix string
			status              int
		}{
			{"signed for E", "/_matrix/federation/v1/version", xm(domA, domE), 200},
			{"unsigned key fetch", "/_matrix/key/v2/server", "", 200},
			{"signed for B, a federated server that did not delegate to it", "/_matrix/federation/v1/version", xm(domA, domB), 403},
			{"signed for C, outside the federation", "/_matrix/federation/v1/version", xm(domA, domC), 403},
		} {
			r := egressThroughTunnel(t, f.a, "HTTP/1.0", hostE, c.path, c.xmatrix)
			if r.status != c.status {
				t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
			}
		}
		// A host E's well-known did not name stays closed.
		f.a.Routes.Set("other-host.localhost", mustURL(e.URL))
		r = egressThroughTunnel(t, f.a, "HTTP/1.1", "other-host.localhost", "/_matrix/federation/v1/version", xm(domA, domE))
		if r.status != 403 {
			t.Errorf("a host E did not delegate to: %d %s, want 403", r.status, r.body)
		}
	})

	// The bypasses of F20, each against the proxies in front of real Dendrites: the proxy itself
	// answers (its decision id), and afterwards the homeservers hold nothing new.
	bob := f.user(t, domB, "bob")
	carol := f.user(t, domC, "carol")
	bobHS, carolHS := f.onHomeserver(t, bob), f.onHomeserver(t, carol)
	own, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	holds := func() string {
		rooms := joinedRooms(t, aliceHS)
		sort.Slice(rooms, func(i, j int) bool { return rooms[i] < rooms[j] })
		members, err := aliceHS.JoinedMembers(ctx, own.RoomID)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("alice in %v, invited to %v; carol invited to %v, in A's room %q, in C's room %v; bob invited to %v; A's room has %d members; alice in C's room %q",
			rooms, invites(t, aliceHS), invites(t, carolHS), membership(t, aliceHS, own.RoomID, carol.UserID),
			joinedRooms(t, carolHS), invites(t, bobHS), len(members.Joined), membership(t, carolHS, pub.RoomID, alice.UserID))
	}
	start := holds()

	client := func(token string) map[string]string {
		h := map[string]string{"User-Agent": mautrixUA, "Content-Type": "application/json"}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		return h
	}
	signed := func(origin, dest string) map[string]string {
		return map[string]string{"Authorization": xm(origin, dest), "Content-Type": "application/json"}
	}
	inviteEvent := func(sender, invitee string, room id.RoomID) string {
		b, _ := json.Marshal(map[string]any{"room_version": "10", "event": map[string]any{
			"type": "m.room.member", "sender": sender, "state_key": invitee, "room_id": room,
			"content": map[string]any{"membership": "invite"}, "origin_server_ts": time.Now().UnixMilli(),
		}})
		return string(b)
	}
	aliceTok, room := alice.AccessToken, url.PathEscape(own.RoomID.String())
	carolID := carol.UserID.String()
	const (
		cv       = "/_matrix/client/v3"
		refused  = "The invite was refused"
		notFed   = domC + " could not be invited"
		tooMany  = "An error occurred when starting communication. Please contact your administrator."
		badRoute = ""
	)
	rows := []struct {
		name, method, url string
		headers           map[string]string
		body              string
		status            int
		errcode, text     string
	}{
		// B1: each listener serves only its own API (Dendrite serves both on one port).
		{"B1 federation invite on the client listener", "PUT", f.a.ClientURL + "/_matrix/federation/v2/invite/" + room + "/$ev1",
			signed(domB, domA), inviteEvent(bob.UserID.String(), alice.UserID.String(), own.RoomID), 404, "M_UNRECOGNIZED", badRoute},
		{"B1 client createRoom on the federation listener", "POST", f.a.FederationURL + cv + "/createRoom",
			client(aliceTok), `{"invite":["` + carolID + `"]}`, 404, "M_UNRECOGNIZED", badRoute},
		{"B1 client invite on the federation listener", "POST", f.a.FederationURL + cv + "/rooms/" + room + "/invite",
			client(aliceTok), `{"user_id":"` + carolID + `"}`, 404, "M_UNRECOGNIZED", badRoute},
		// B2: an escaped "?" stays in its segment.
		{"B2 federation invite with %3F as the event id", "PUT", f.a.FederationURL + "/_matrix/federation/v2/invite/" + room + "/%3F",
			signed(domB, domA), inviteEvent(bob.UserID.String(), alice.UserID.String(), own.RoomID), 403, "M_FORBIDDEN", refused},
		{"B2 client invite with %3F as the room", "POST", f.a.ClientURL + cv + "/rooms/%3F/invite",
			client(aliceTok), `{"user_id":"` + carolID + `"}`, 403, "M_FORBIDDEN", notFed},
		{"B2 media download with %3F after the server", "GET", f.a.ClientURL + "/_matrix/client/v1/media/download/" + domC + "/%3Fabc",
			client(aliceTok), "", 403, "M_FORBIDDEN", "The other party could not be contacted"},
		{"B2 media download with %3F in the server", "GET", f.a.ClientURL + "/_matrix/media/v3/download/" + domC + "%3F/abc",
			client(aliceTok), "", 403, "M_FORBIDDEN", "The other party could not be contacted"},
		// B3: the transaction-id forms (Synapse serves them, Dendrite v0.13.8 does not).
		{"B3 PUT invite with a transaction id", "PUT", f.a.ClientURL + cv + "/rooms/" + room + "/invite/txn1",
			client(aliceTok), `{"user_id":"` + carolID + `"}`, 403, "M_FORBIDDEN", notFed},
		{"B3 PUT createRoom with a transaction id", "PUT", f.a.ClientURL + cv + "/createRoom/txn1",
			client(aliceTok), `{"invite":["` + carolID + `"]}`, 403, "M_FORBIDDEN", notFed},
		// B5: inbound requests for another server.
		{"B5 federation invite for another destination", "PUT", f.a.FederationURL + "/_matrix/federation/v2/invite/" + room + "/$ev2",
			signed(domB, domC), inviteEvent(bob.UserID.String(), alice.UserID.String(), own.RoomID), 401, "M_UNAUTHORIZED", ""},
		{"B5 profile query for another destination", "GET", f.a.FederationURL + "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape(alice.UserID.String()),
			signed(domB, "evil.localhost"), "", 401, "M_UNAUTHORIZED", ""},
		// B6: dot segments are refused, not resolved.
		{"B6 /./createRoom", "POST", f.a.ClientURL + cv + "/./createRoom", client(aliceTok), `{"invite":["` + carolID + `"]}`, 400, "M_UNRECOGNIZED", ""},
		{"B6 /x/../rooms/{id}/invite", "POST", f.a.ClientURL + cv + "/x/../rooms/" + room + "/invite", client(aliceTok), `{"user_id":"` + carolID + `"}`, 400, "M_UNRECOGNIZED", ""},
		{"B6 escaped dot segment", "POST", f.a.ClientURL + cv + "/x/%2e%2E/createRoom", client(aliceTok), `{"invite":["` + carolID + `"]}`, 400, "M_UNRECOGNIZED", ""},
		// B7: initial_state member events are invitees.
		{"B7 initial_state invite of a user outside the federation", "POST", f.a.ClientURL + cv + "/createRoom", client(aliceTok),
			`{"initial_state":[{"type":"m.room.member","state_key":"` + carolID + `","content":{"membership":"invite"}}]}`, 403, "M_FORBIDDEN", notFed},
		{"B7 invite plus an initial_state member: two invitees", "POST", f.a.ClientURL + cv + "/createRoom", client(aliceTok),
			`{"invite":["` + bob.UserID.String() + `"],"initial_state":[{"type":"m.room.member","state_key":"@dora:` + domB + `","content":{"membership":"invite"}}]}`, 400, "M_FORBIDDEN", tooMany},
		// The same effects through other spellings a homeserver accepts: the r0 version, a key written
		// with an escape, a repeated key (the last one counts, as in Dendrite's encoding/json), a member
		// state event on r0, and a literal segment written with an escape (not that route: the filter refuses it as it refuses any unknown form).
		{"B7 r0 createRoom initial_state invite", "POST", f.a.ClientURL + "/_matrix/client/r0/createRoom", client(aliceTok),
			`{"initial_state":[{"type":"m.room.member","state_key":"` + carolID + `","content":{"membership":"invite"}}]}`, 403, "M_FORBIDDEN", notFed},
		{"B7 createRoom invite under an escaped key", "POST", f.a.ClientURL + cv + "/createRoom", client(aliceTok),
			`{"\u0069nvite":["` + carolID + `"]}`, 403, "M_FORBIDDEN", notFed},
		{"B7 createRoom repeated invite key, the last outside the federation", "POST", f.a.ClientURL + cv + "/createRoom", client(aliceTok),
			`{"invite":["` + bob.UserID.String() + `"],"invite":["` + carolID + `"]}`, 403, "M_FORBIDDEN", notFed},
		{"B7 r0 member state event inviting outside the federation", "PUT", f.a.ClientURL + "/_matrix/client/r0/rooms/" + room + "/state/m.room.member/" + url.PathEscape(carolID), client(aliceTok),
			`{"membership":"invite"}`, 403, "M_FORBIDDEN", notFed},
		{"B6 escaped letter in a literal segment", "POST", f.a.ClientURL + cv + "/%63reateRoom", client(aliceTok), `{"invite":["` + carolID + `"]}`, 405, "M_UNRECOGNIZED", ""},
		// B8: third-party invites, joins through servers outside the federation.
		{"B8 createRoom invite_3pid", "POST", f.a.ClientURL + cv + "/createRoom", client(aliceTok),
			`{"invite_3pid":[{"id_server":"` + domC + `","id_access_token":"t","medium":"email","address":"carol@` + domC + `"}]}`, 403, "M_FORBIDDEN", refused},
		{"B8 invite by e-mail", "POST", f.a.ClientURL + cv + "/rooms/" + room + "/invite", client(aliceTok),
			`{"id_server":"` + domC + `","id_access_token":"t","medium":"email","address":"carol@` + domC + `"}`, 403, "M_FORBIDDEN", refused},
		{"B8 join C's room", "POST", f.a.ClientURL + cv + "/join/" + url.PathEscape(pub.RoomID.String()), client(aliceTok), `{}`, 403, "M_FORBIDDEN", "The other party could not be contacted"},
		{"B8 join C's room by alias", "POST", f.a.ClientURL + cv + "/join/" + url.PathEscape("#pub:"+domC), client(aliceTok), `{}`, 403, "M_FORBIDDEN", "The other party could not be contacted"},
		{"B8 join via server_name outside the federation", "POST", f.a.ClientURL + cv + "/join/" + url.PathEscape("!x:"+domB) + "?server_name=" + domC, client(aliceTok), `{}`, 403, "M_FORBIDDEN", "The other party could not be contacted"},
		{"B8 knock via a server outside the federation", "POST", f.a.ClientURL + cv + "/knock/" + url.PathEscape(pub.RoomID.String()) + "?via=" + domC, client(aliceTok), `{}`, 403, "M_FORBIDDEN", "The other party could not be contacted"},
		{"B8 exchange_third_party_invite", "PUT", f.a.FederationURL + "/_matrix/federation/v1/exchange_third_party_invite/" + room, signed(domB, domA),
			`{"type":"m.room.member","room_id":"` + own.RoomID.String() + `","sender":"` + bob.UserID.String() + `","state_key":"` + carolID + `","content":{"membership":"invite","third_party_invite":{"display_name":"c","signed":{"mxid":"` + carolID + `","token":"t","signatures":{}}}}}`,
			403, "M_FORBIDDEN", ""},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var rd io.Reader
			if r.body != "" {
				rd = strings.NewReader(r.body)
			}
			req, err := http.NewRequest(r.method, r.url, rd)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range r.headers {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct{ Errcode, Error string }
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != r.status || e.Errcode != r.errcode || (r.text != "" && e.Error != r.text) {
				t.Errorf("%d %s, want %d %s %q", resp.StatusCode, b, r.status, r.errcode, r.text)
			}
			if resp.Header.Get("X-Tim-Decision-Id") == "" {
				t.Errorf("answered by the homeserver, not the proxy: %d %s", resp.StatusCode, b)
			}
			if now := holds(); now != start {
				t.Errorf("the homeservers changed:\n  before %s\n  after  %s", start, now)
			}
		})
	}

	t.Run("B3 Dendrite v0.13.8 serves no transaction-id form: what the proxy lets through it refuses", func(t *testing.T) {
		for _, c := range []struct{ path, body string }{
			{cv + "/rooms/" + room + "/invite/txn2", `{"user_id":"` + bob.UserID.String() + `"}`},
			{cv + "/createRoom/txn2", `{"invite":["` + bob.UserID.String() + `"]}`},
		} {
			req, _ := http.NewRequest("PUT", f.a.ClientURL+c.path, strings.NewReader(c.body))
			for k, v := range client(aliceTok) {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || resp.Header.Get("X-Tim-Decision-Id") != "" {
				t.Errorf("PUT %s: %d %s (decision id %q), want Dendrite's own refusal", c.path, resp.StatusCode, b, resp.Header.Get("X-Tim-Decision-Id"))
			}
			t.Logf("PUT %s: Dendrite answers %d %s", c.path, resp.StatusCode, b)
		}
		if now := holds(); now != start {
			t.Errorf("the homeservers changed:\n  before %s\n  after  %s", start, now)
		}
	})

	t.Run("B4 through A's egress tunnel: a state change for C behind B's name", func(t *testing.T) {
		body := inviteEvent(alice.UserID.String(), carolID, own.RoomID)
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			r := egressTunnelDo(t, f.a, proto, domC, "PUT", "/_matrix/federation/v2/invite/"+room+"/$ev3", xm(domA, domB), body)
			wantJSON(t, r, 403, map[string]any{"errcode": "M_FORBIDDEN", "error": "The other party could not be contacted"})
		}
		if now := holds(); now != start {
			t.Errorf("the homeservers changed:\n  before %s\n  after  %s", start, now)
		}
	})

	// An insurance's messenger in the federation list (not running: the control planes only read the flag).
	f.vzd.AddDomain(vzdstandin.Domain{Domain: "kasse.localhost", TelematikID: "8-2-e2e-k", TimAnbieter: "Provider K", IsInsurance: true, IK: []string{"109500969"}})
	t.Run("B9 insurance domains written with a port (stage 2, group exception)", func(t *testing.T) {
		if err := f.a.Control.Fed.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if err := alice.SetAccountData(ctx, "de.gematik.tim.account.permissionconfig.pro.v1", map[string]any{
			"defaultSetting": "block all", "groupExceptions": []any{map[string]any{"groupName": "isInsuredPerson"}},
		}); err != nil {
			t.Fatal(err)
		}
		ask := func(inviter string) bool {
			r := call(t, "POST", f.a.ControlInternalURL+"/internal/v1/invite-permission",
				map[string]string{"Authorization": "Bearer " + f.a.InternalSecret, "Content-Type": "application/json"},
				fmt.Sprintf(`{"inviter":%q,"invitee":%q}`, inviter, alice.UserID))
			if r.status != 200 {
				t.Fatalf("invite-permission: %d %s", r.status, r.body)
			}
			allow, _ := r.json(t)["allow"].(bool)
			return allow
		}
		for _, c := range []struct {
			inviter string
			allow   bool
		}{
			{"@kim:kasse.localhost", true},
			{"@kim:kasse.localhost:8448", true},
			{"@kim:KASSE.localhost:443", true},
			{"@kim:" + domB + ":8448", false},
			{"@kim:" + domB, false},
		} {
			if got := ask(c.inviter); got != c.allow {
				t.Errorf("inviter %s: allow %v, want %v", c.inviter, got, c.allow)
			}
		}
	})

	t.Run("B9 ePA: two insured persons, domains written with a port (stage 2)", func(t *testing.T) {
		const domK = "kk.localhost"
		f.vzd.AddDomain(vzdstandin.Domain{Domain: domK, TelematikID: "8-2-e2e-kk", TimAnbieter: "Provider KK", IsInsurance: true, IK: []string{"109500970"}})
		k, err := localstack.Start(ctx, localstack.Options{DataDir: filepath.Join(f.dir, domK), ServerName: domK, NoPush: true,
			VZD: f.vzd, VZDURL: f.vzdURL, RefetchMinInterval: time.Millisecond, Variant: "epa"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := k.Close(cctx); err != nil {
				t.Errorf("stop %s: %v", domK, err)
			}
		})
		invitee := k.Users[0].MXID // a demo user of the insurance's messenger
		for _, c := range []struct {
			inviter string
			insured bool
		}{
			{"@kim:kasse.localhost", true},
			{"@kim:kasse.localhost:8448", true},
			{"@kim:KASSE.localhost:443", true},
			{"@kim:" + domB + ":8448", false},
		} {
			r := call(t, "POST", k.ControlInternalURL+"/internal/v1/invite-permission",
				map[string]string{"Authorization": "Bearer " + k.InternalSecret, "Content-Type": "application/json"},
				fmt.Sprintf(`{"inviter":%q,"invitee":%q}`, c.inviter, invitee))
			if r.status != 200 {
				t.Fatalf("invite-permission: %d %s", r.status, r.body)
			}
			d := r.json(t)
			refusedAsInsured := d["allow"] == false && d["reason"] == "invite between two insured persons"
			if refusedAsInsured != c.insured {
				t.Errorf("inviter %s: %v, want refused as two insured persons: %v", c.inviter, d, c.insured)
			}
		}
	})

	// Anything let through late would show by now.
	time.Sleep(2 * time.Second)
	if now := holds(); now != start {
		t.Errorf("the homeservers changed:\n  before %s\n  after  %s", start, now)
	}
	// Control: what the rows would have done had they passed shows in holds.
	if _, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"}); err != nil {
		t.Fatalf("control createRoom: %v", err)
	}
	if holds() == start {
		t.Fatal("a new room of alice's does not show in what the check compares")
	}
}
