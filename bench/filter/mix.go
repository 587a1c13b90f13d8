package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// The traffic mixes: what a listener of a messenger service sees, as a
// fixed sequence of requests drawn from weighted Matrix request shapes.
//
// Where the shapes come from: the requests the two-organisation test sends
// through the proxies of two real Dendrite homeservers with a real client
// library (testdata/e2e-shapes.tsv, recorded with TIM_E2E_SHAPES), widened
// by what an everyday client does that the test does not (typing, receipts,
// read markers, to-device, key queries, media). Where the proportions come
// from: no homeserver operator publishes request counts per endpoint (we
// found none), and the recording's own counts are a test script's (readiness
// probes of /versions, one message per scenario), not a user's. So the
// weights are a model of one hour of an active user, written down here so
// that they can be argued with:
//
// Client-server (per 100 requests): a client keeps one /sync long-poll open
// (timeout 30 s), returning early on every event, so syncs dominate (40);
// each message sent (8, new transaction id) is followed by receipts of the
// messages read (8, new event id), a read marker (4) and typing
// notifications (6, repeat per room); end-to-end encryption adds to-device
// messages (6, new transaction id), key queries (5) and key uploads (2);
// media downloads and thumbnails (8, a third of them a new media id), profile
// reads (5), push rules and account data (3), /versions and capabilities
// (2), message history (2) and, rarely, a createRoom with a new invitee (1).
//
// Server-server (per 100 requests): a federation transaction for every
// batch of events and receipts a server sends (45, new transaction id; the
// body holds PDUs and EDUs), key queries (12), event fetches with new event
// ids (8), profile queries (8), device lists (6), media (6), missing
// events and backfill (5), state ids (3), server keys (4), make_join /
// send_join (2), version (1). Inbound invites (PUT /invite) are left out:
// each asks the control plane (stage 2/3), which the benchmark does not run.
//
// Every request of a mix is one the policy allows: refusals are cheap and
// would flatter the figures. Origins, rooms and users are drawn with a skew
// (a few partners and rooms carry most traffic), so repeating requests
// repeat as they do in practice.
type mix struct {
	name, role string
	shapes     []weighted
}

type weighted struct {
	name   string
	weight int
	gen    func(g *gen) request
}

type request struct {
	headers [][2]string
	body    []byte
}

// gen draws the variable parts of requests.
type gen struct {
	rng *rand.Rand
	seq int
}

// skewed draws from 0..n-1, small numbers far more often (a few partners,
// rooms and users carry most of the traffic).
func (g *gen) skewed(n int) int {
	x := g.rng.Float64()
	return int(float64(n) * x * x * x)
}

func (g *gen) next() string { g.seq++; return strconv.Itoa(g.seq) }

func (g *gen) room() string {
	return "!room" + strconv.Itoa(g.skewed(40)) + ":home.example.de"
}

// partner is a server of the list (d0…d199 are in both lists measured).
func (g *gen) partner() string { return "d" + strconv.Itoa(g.skewed(200)) + ".example.de" }

func (g *gen) localUser() string { return "@u" + strconv.Itoa(g.skewed(500)) + ":home.example.de" }

const clientUA = "TIM-Client/1.0 (Linux),tim-client-1.0"

func clientRequest(method, path string, body string) request {
	hs := [][2]string{{":method", method}, {":path", path}, {":authority", "matrix.home.example.de"}, {"user-agent", clientUA}, {"authorization", "Bearer syt_dXNlcg_abcdefghijklmnopqrst_0a1b2c"}}
	var b []byte
	if body != "" {
		hs = append(hs, [2]string{"content-type", "application/json"})
		b = []byte(body)
	}
	return request{hs, b}
}

func federationRequest(g *gen, method, path string, body string) request {
	hs := [][2]string{{":method", method}, {":path", path}, {":authority", "home.example.de:8448"},
		{"authorization", `X-Matrix origin="` + g.partner() + `",destination="home.example.de",key="ed25519:a_Abcd",sig="` + sig(g) + `"`}}
	var b []byte
	if body != "" {
		hs = append(hs, [2]string{"content-type", "application/json"})
		b = []byte(body)
	}
	return request{hs, b}
}

// sig is a signature that differs per request, as real ones do.
func sig(g *gen) string {
	return fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64())
}

var mixes = []mix{
	{name: "client_server", role: "client", shapes: []weighted{
		{"sync", 40, func(g *gen) request {
			return clientRequest("GET", "/_matrix/client/v3/sync?filter=0&timeout=30000&since=s"+g.next(), "")
		}},
		{"send_new_txn", 8, func(g *gen) request {
			return clientRequest("PUT", "/_matrix/client/v3/rooms/"+g.room()+"/send/m.room.encrypted/m"+g.next(), `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEnAA","device_id":"DEV","sender_key":"k","session_id":"s"}`)
		}},
		{"receipt_new_event", 8, func(g *gen) request {
			return clientRequest("POST", "/_matrix/client/v3/rooms/"+g.room()+"/receipt/m.read/$ev"+g.next(), `{}`)
		}},
		{"read_markers", 4, func(g *gen) request {
			return clientRequest("POST", "/_matrix/client/v3/rooms/"+g.room()+"/read_markers", `{"m.fully_read":"$ev1","m.read":"$ev1"}`)
		}},
		{"typing", 6, func(g *gen) request {
			return clientRequest("PUT", "/_matrix/client/v3/rooms/"+g.room()+"/typing/@u1:home.example.de", `{"typing":true,"timeout":30000}`)
		}},
		{"to_device_new_txn", 6, func(g *gen) request {
			return clientRequest("PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/"+g.next(), `{"messages":{}}`)
		}},
		{"keys_query", 5, func(g *gen) request {
			return clientRequest("POST", "/_matrix/client/v3/keys/query", `{"device_keys":{"@u2:home.example.de":[]}}`)
		}},
		{"keys_upload", 2, func(g *gen) request {
			return clientRequest("POST", "/_matrix/client/v3/keys/upload", `{"one_time_keys":{}}`)
		}},
		{"media", 8, func(g *gen) request {
			id := "m" + strconv.Itoa(g.skewed(30))
			if g.rng.IntN(3) == 0 {
				id = "n" + g.next()
			}
			kind := "download"
			if g.rng.IntN(2) == 0 {
				kind = "thumbnail"
			}
			return clientRequest("GET", "/_matrix/client/v1/media/"+kind+"/"+g.partner()+"/"+id, "")
		}},
		{"profile", 5, func(g *gen) request {
			return clientRequest("GET", "/_matrix/client/v3/profile/@u"+strconv.Itoa(g.skewed(50))+":"+g.partner(), "")
		}},
		{"pushrules_account_data", 3, func(g *gen) request {
			if g.rng.IntN(2) == 0 {
				return clientRequest("GET", "/_matrix/client/v3/pushrules/", "")
			}
			return clientRequest("GET", "/_matrix/client/v3/user/@u1:home.example.de/account_data/m.direct", "")
		}},
		{"versions_capabilities", 2, func(g *gen) request {
			if g.rng.IntN(2) == 0 {
				return clientRequest("GET", "/_matrix/client/versions", "")
			}
			return clientRequest("GET", "/_matrix/client/v3/capabilities", "")
		}},
		{"messages", 2, func(g *gen) request {
			return clientRequest("GET", "/_matrix/client/v3/rooms/"+g.room()+"/messages?dir=b&limit=30", "")
		}},
		{"createroom_new_invitee", 1, func(g *gen) request {
			return clientRequest("POST", "/_matrix/client/v3/createRoom", `{"preset":"private_chat","invite":["@p`+g.next()+`:`+g.partner()+`"],"is_direct":true}`)
		}},
	}},
	{name: "server_server", role: "federation", shapes: []weighted{
		{"send_new_txn", 45, func(g *gen) request {
			n := g.next()
			return federationRequest(g, "PUT", "/_matrix/federation/v1/send/"+n, `{"origin":"d1.example.de","origin_server_ts":1700000000000,"pdus":[{"type":"m.room.encrypted","room_id":"!room1:home.example.de","sender":"@p1:d1.example.de","content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEnAA"},"depth":`+n+`,"prev_events":["$a"],"auth_events":["$b"],"hashes":{"sha256":"h"},"signatures":{}}],"edus":[{"edu_type":"m.receipt","content":{}}]}`)
		}},
		{"keys_query", 12, func(g *gen) request {
			return federationRequest(g, "POST", "/_matrix/federation/v1/user/keys/query", `{"device_keys":{"@u1:home.example.de":[]}}`)
		}},
		{"event_new", 8, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/federation/v1/event/$ev"+g.next(), "")
		}},
		{"query_profile", 8, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/federation/v1/query/profile?user_id="+g.localUser(), "")
		}},
		{"user_devices", 6, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/federation/v1/user/devices/"+g.localUser(), "")
		}},
		{"media", 6, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/federation/v1/media/download/m"+strconv.Itoa(g.skewed(40)), "")
		}},
		{"missing_events_backfill", 5, func(g *gen) request {
			if g.rng.IntN(2) == 0 {
				return federationRequest(g, "POST", "/_matrix/federation/v1/get_missing_events/"+g.room(), `{"earliest_events":["$a"],"latest_events":["$b"],"limit":10}`)
			}
			return federationRequest(g, "GET", "/_matrix/federation/v1/backfill/"+g.room()+"?v=$b&limit=50", "")
		}},
		{"state_ids", 3, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/federation/v1/state_ids/"+g.room()+"?event_id=$ev"+g.next(), "")
		}},
		{"server_keys", 4, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/key/v2/server", "")
		}},
		{"make_send_join", 2, func(g *gen) request {
			if g.rng.IntN(2) == 0 {
				return federationRequest(g, "GET", "/_matrix/federation/v1/make_join/"+g.room()+"/@p"+g.next()+":d1.example.de?ver=10", "")
			}
			return federationRequest(g, "PUT", "/_matrix/federation/v2/send_join/"+g.room()+"/$join"+g.next(), `{"type":"m.room.member","content":{"membership":"join"}}`)
		}},
		{"version", 1, func(g *gen) request {
			return federationRequest(g, "GET", "/_matrix/federation/v1/version", "")
		}},
	}},
}

// mixLength is the number of requests in a mix's sequence: long enough that
// the memo's 1 024 slots and the doorkeeper see a steady state.
const mixLength = 20_000

// sequence is the mix's fixed request sequence (same seed, same requests in
// every host and every run) and the shape of each request.
func (m mix) sequence(n int) ([]request, []string) {
	g := &gen{rng: rand.New(rand.NewPCG(7, uint64(len(m.name))))}
	total := 0
	for _, s := range m.shapes {
		total += s.weight
	}
	reqs, names := make([]request, n), make([]string, n)
	for i := range reqs {
		x := g.rng.IntN(total)
		for _, s := range m.shapes {
			if x < s.weight {
				reqs[i], names[i] = s.gen(g), s.name
				break
			}
			x -= s.weight
		}
	}
	return reqs, names
}

// proportions is the mix's weights in percent, for the report.
func (m mix) proportions() map[string]float64 {
	total := 0
	for _, s := range m.shapes {
		total += s.weight
	}
	out := map[string]float64{}
	for _, s := range m.shapes {
		out[s.name] = 100 * float64(s.weight) / float64(total)
	}
	return out
}
