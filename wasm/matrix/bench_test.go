package matrix

import "testing"

func BenchmarkRoute(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		testRoute("PUT", "/_matrix/federation/v2/invite/!room:example.de/$event")
	}
}

func BenchmarkParseXMatrix(b *testing.B) {
	in := []string{`X-Matrix origin="origin.example.de",destination="dest.example.de",key="ed25519:key1",sig="dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaXMgbG9uZyBlbm91Z2g"`}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseXMatrix(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInviteesCreateRoom(b *testing.B) {
	r := testRoute("POST", "/_matrix/client/v3/createRoom")
	body := []byte(`{"preset":"trusted_private_chat","is_direct":true,"invite":["@bob:other.example.de"],"initial_state":[{"type":"m.room.encryption","state_key":"","content":{"algorithm":"m.megolm.v1.aes-sha2"}}]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := Invitees(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientID(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ClientID("TIM-Client/1.4.2 (iOS 17),Example GmbH,tim-client-ios-1.4", "", "")
	}
}

// BenchmarkInviteesCreateRoomEncodingJSON measures the encoding/json code the
// scanner replaced (body_oracle_test.go) on the same body, for comparison.
func BenchmarkInviteesCreateRoomEncodingJSON(b *testing.B) {
	r := testRoute("POST", "/_matrix/client/v3/createRoom")
	body := []byte(`{"preset":"trusted_private_chat","is_direct":true,"invite":["@bob:other.example.de"],"initial_state":[{"type":"m.room.encryption","state_key":"","content":{"algorithm":"m.megolm.v1.aes-sha2"}}]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := oldInvitees(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

const benchFederationInvite = `{"room_version":"10","event":{"type":"m.room.member","room_id":"!r:a.de","sender":"@alice:a.de","state_key":"@bob:b.de","origin_server_ts":1700000000000,"content":{"membership":"invite","displayname":"Bob"},"hashes":{"sha256":"dGhpcyBpcyBub3QgYSBoYXNo"},"signatures":{"a.de":{"ed25519:k":"c2lnbmF0dXJl"}}},"invite_room_state":[{"type":"m.room.name","state_key":"","sender":"@alice:a.de","content":{"name":"Praxis"}}]}`

func BenchmarkFederationInviteV2(b *testing.B) {
	r := testRoute("PUT", "/_matrix/federation/v2/invite/!r:a.de/$e")
	body := []byte(benchFederationInvite)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := FederationInvite(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFederationInviteV2EncodingJSON(b *testing.B) {
	r := testRoute("PUT", "/_matrix/federation/v2/invite/!r:a.de/$e")
	body := []byte(benchFederationInvite)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := oldFederationInvite(r, body); err != nil {
			b.Fatal(err)
		}
	}
}
