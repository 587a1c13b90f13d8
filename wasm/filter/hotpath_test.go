//go:build !wasip1

package filter

import (
	"testing"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Request headers of the benchmark scenarios (bench/filter uses the same).
var (
	hdrClientGet = [][2]string{{":method", "GET"}, {":path", "/_matrix/client/v3/sync?since=s1"}, {":authority", "matrix.home.example.de"},
		{"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"authorization", "Bearer abc"}}
	hdrFederation = [][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v1/send/1234"}, {":authority", "home.example.de:8448"},
		{"authorization", `X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`}}
	hdrCreateRoom = [][2]string{{":method", "POST"}, {":path", "/_matrix/client/v3/createRoom"}, {":authority", "matrix.home.example.de"},
		{"user-agent", "TIM-Client/1.0 (Linux),tim-client-1.0"}, {"content-type", "application/json"}}
)

// TestInputLen: the input builder is sized by inputLen; a member added to
// input without counting it there would silently grow the object.
func TestInputLen(t *testing.T) {
	rows := []struct {
		name string
		role string
		hdr  [][2]string
		body string
	}{
		{"client GET", "client", hdrClientGet, ""},
		{"federation with X-Matrix and port", "federation", hdrFederation, ""},
		{"createRoom", "client", hdrCreateRoom, `{"invite":["@bob:d500.example.de"]}`},
		{"federation invite", "federation", [][2]string{{":method", "PUT"}, {":path", "/_matrix/federation/v2/invite/!r:a.de/$e"}, {":authority", "home.example.de"}},
			`{"event":{"sender":"@a:a.de","state_key":"@b:home.example.de","type":"m.room.member","content":{"membership":"invite"}}}`},
		{"media", "client", [][2]string{{":method", "GET"}, {":path", "/_matrix/client/v1/media/download/other.de:8448/abc"}, {":authority", "matrix.home.example.de"}}, ""},
		{"bare", "client", [][2]string{{":method", "GET"}, {":path", "/"}}, ""},
		{"createRoom, many invitees", "client", hdrCreateRoom, `{"invite":["@a:a.de","@b:b.de","@c:c.de","@d:d.de","@e:e.de","@f:f.de"]}`},
		{"createRoom, two invitees", "client", hdrCreateRoom, `{"invite":["@x:x.de","@y:y.de"]}`},
	}
	reused := map[string]*plugin{}
	for _, r := range append(rows, rows...) {
		fresh := &stream{p: &plugin{cfg: &Config{Direction: r.role}}}
		p := reused[r.role]
		if p == nil {
			p = &plugin{cfg: &Config{Direction: r.role}}
			reused[r.role] = p
		}
		s := &stream{p: p}
		for _, st := range []*stream{fresh, s} {
			if !st.f.fromHeaders(r.hdr, r.role) {
				t.Fatalf("%s: headers refused", r.name)
			}
			if r.body != "" {
				var err error
				if st.f.route.Name == matrix.RouteFederationInvite {
					st.f.inviter, st.f.invitee, err = matrix.FederationInvite(st.f.route, []byte(r.body))
					st.f.hasInvite = err == nil
				} else {
					st.f.invitees, st.f.thirdParty, err = matrix.Invitees(st.f.route, []byte(r.body))
				}
				if err != nil {
					t.Fatalf("%s: body: %v", r.name, err)
				}
			}
		}
		// The input built in reused storage (after other requests) is the
		// input built afresh.
		want, _ := planvm.ToJSON(fresh.input(false))
		got, _ := planvm.ToJSON(s.input(false))
		if string(got) != string(want) {
			t.Errorf("%s: reused storage built %s, fresh %s", r.name, got, want)
		}
		if n := s.inputLen(); n > maxInputLen {
			t.Errorf("%s: %d members, over maxInputLen", r.name, n)
		}
	}
	for _, r := range rows {
		s := &stream{p: &plugin{cfg: &Config{Direction: r.role}}}
		if !s.f.fromHeaders(r.hdr, r.role) {
			t.Fatalf("%s: headers refused", r.name)
		}
		if r.body != "" {
			var err error
			if s.f.route.Name == matrix.RouteFederationInvite {
				s.f.inviter, s.f.invitee, err = matrix.FederationInvite(s.f.route, []byte(r.body))
				s.f.hasInvite = err == nil
			} else {
				s.f.invitees, s.f.thirdParty, err = matrix.Invitees(s.f.route, []byte(r.body))
			}
			if err != nil {
				t.Fatalf("%s: body: %v", r.name, err)
			}
		}
		if got, want := s.input(false).Len(), s.inputLen(); got != want {
			t.Errorf("%s (route %q): input has %d members, inputLen says %d", r.name, s.f.route.Name, got, want)
		}
	}
}

// BenchmarkHeaders measures reading the facts of a request's headers.
func BenchmarkHeaders(b *testing.B) {
	for _, bc := range []struct {
		name, role string
		hdr        [][2]string
	}{{"client_get", "client", hdrClientGet}, {"federation", "federation", hdrFederation}, {"createroom", "client", hdrCreateRoom}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var f facts
				if !f.fromHeaders(bc.hdr, bc.role) {
					b.Fatal("refused")
				}
			}
		})
	}
}
