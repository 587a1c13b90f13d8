package matrix

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseServerName(f *testing.F) {
	for _, s := range []string{"example.de", "example.de:8448", "1.2.3.4", "[::1]:80", "[fe80::1%eth0]", "a..b", ":", "["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := ParseServerName(s)
		if err != nil {
			if !errors.Is(err, ErrBadServerName) || host != "" || port != 0 {
				t.Fatalf("error %v with result %q %d", err, host, port)
			}
			return
		}
		if len(s) > MaxIDLength || port < 0 || port > 65535 {
			t.Fatalf("accepted %q (port %d)", s, port)
		}
		// The parts put back together give the input.
		back := host
		if port != 0 {
			back += ":" + strconv.Itoa(port)
		}
		if back != s {
			t.Fatalf("%q parsed to %q %d", s, host, port)
		}
	})
}

func FuzzParseUserID(f *testing.F) {
	for _, s := range []string{"@a:b.de", "@a:b.de:1", "@a:[::1]", "@:b", "@a", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		local, server, err := ParseUserID(s)
		if err != nil {
			if !errors.Is(err, ErrBadUserID) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if "@"+local+":"+server != s || strings.Contains(local, ":") || local == "" {
			t.Fatalf("%q parsed to %q %q", s, local, server)
		}
		if _, _, err := ParseServerName(server); err != nil {
			t.Fatalf("server %q of %q invalid", server, s)
		}
	})
}

func FuzzParseXMatrix(f *testing.F) {
	f.Add(`X-Matrix origin="o.de",destination="d.de",key="ed25519:k",sig="s"`, "")
	f.Add(`x-matrix origin=o.de:8448,key=k,sig=s`, `X-Matrix origin=o.de:8448`)
	f.Add(`X-Matrix origin="a\"b"`, "Bearer x")
	f.Add(`X-Matrix origin="d500.example.de",key="ed25519:a",sig="c2lnbmF0dXJl",destination="home.example.de:8448"`, `X-Matrix origin="d500.example.de",key="ed25519:b",sig="cw"`)
	f.Fuzz(func(t *testing.T, a, b string) {
		x, err := ParseXMatrix([]string{a, b})
		if o, d, err2 := XMatrixOrigin([]string{a, b}); o != x.Origin || d != x.Destination || err2 != err {
			t.Fatalf("XMatrixOrigin = %q %q %v, ParseXMatrix = %+v %v", o, d, err2, x, err)
		}
		// HasXMatrixScheme tells exactly whether a value is read at all.
		if err == nil && !HasXMatrixScheme(a) && !HasXMatrixScheme(b) {
			t.Fatalf("parsed %+v from values without the X-Matrix scheme", x)
		}
		if !HasXMatrixScheme(a) && len(a) <= MaxAuthorizationLength {
			if x2, err2 := ParseXMatrix([]string{b}); x2 != x || (err2 == nil) != (err == nil) {
				t.Fatalf("a value without the scheme changed the result: %+v %v vs %+v %v", x, err, x2, err2)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadXMatrix) && !errors.Is(err, ErrNoXMatrix) {
				t.Fatalf("error %v", err)
			}
			if x != (XMatrix{}) {
				t.Fatalf("result %+v with error", x)
			}
			return
		}
		if _, _, err := ParseServerName(x.Origin); err != nil || x.Origin != strings.ToLower(x.Origin) {
			t.Fatalf("origin %q", x.Origin)
		}
		if x.Destination != "" {
			if _, _, err := ParseServerName(x.Destination); err != nil {
				t.Fatalf("destination %q", x.Destination)
			}
		}
	})
}

func FuzzInvitees(f *testing.F) {
	f.Add("POST", "/_matrix/client/v3/createRoom", `{"invite":["@a:b.de"]}`)
	f.Add("POST", "/_matrix/client/v3/rooms/!r:x/invite", `{"user_id":"@a:b.de"}`)
	f.Add("PUT", "/_matrix/client/v3/rooms/!r:x/state/m.room.member/@a:b.de", `{"membership":"invite"}`)
	f.Add("PUT", "/_matrix/federation/v2/invite/!r:x/$e", `{"event":{"sender":"@a:b.de","state_key":"@c:d.de"}}`)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		r := testRoute(method, path)
		ids, _, err := Invitees(r, []byte(body))
		if err != nil {
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrBadParam) {
				t.Fatalf("error %v", err)
			}
			if ids != nil {
				t.Fatal("ids with error")
			}
		}
		for _, id := range ids {
			if _, _, err := ParseUserID(id); err != nil {
				t.Fatalf("invalid invitee %q", id)
			}
		}
		inviter, invitee, err := FederationInvite(r, []byte(body))
		if err == nil {
			if _, _, e1 := ParseUserID(inviter); e1 != nil {
				t.Fatalf("invalid inviter %q", inviter)
			}
			if _, _, e2 := ParseUserID(invitee); e2 != nil {
				t.Fatalf("invalid invitee %q", invitee)
			}
		}
	})
}
