package matrix

import "testing"

func BenchmarkClassify(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Classify("PUT", "/_matrix/federation/v2/invite/!room:example.de/$event")
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
	r := Classify("POST", "/_matrix/client/v3/createRoom")
	body := []byte(`{"preset":"trusted_private_chat","is_direct":true,"invite":["@bob:other.example.de"],"initial_state":[{"type":"m.room.encryption","state_key":"","content":{"algorithm":"m.megolm.v1.aes-sha2"}}]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Invitees(r, body); err != nil {
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
