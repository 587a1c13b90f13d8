package e2e

import (
	"context"
	"testing"

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

		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{erin.UserID}})
		if err != nil {
			t.Fatalf("createRoom: %v", err)
		}
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
}
