package filter

import (
	"encoding/json"
	"testing"
)

// The bodies the filter writes are byte for byte what encoding/json writes
// for the same struct, escapes included.
func TestJSONBodiesMatchEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "<script>&amp;</script>", "line\nbreak\ttab\r\x00\x1f",
		"umlaut äöü ß", "emoji 😀", "invalid \xff utf-8", "separators \u2028 \u2029", "@alice:example.de",
	} {
		want, _ := json.Marshal(struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}{"M_FORBIDDEN", s})
		if got := errorBody("M_FORBIDDEN", s); string(got) != string(want) {
			t.Errorf("errorBody(%q) = %s, want %s", s, got, want)
		}
		want, _ = json.Marshal(struct {
			Inviter string `json:"inviter"`
			Invitee string `json:"invitee"`
		}{s, "@bob:" + s})
		if got := inviteRequestBody(s, "@bob:"+s); string(got) != string(want) {
			t.Errorf("inviteRequestBody(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestParseInviteAnswer(t *testing.T) {
	for _, c := range []struct {
		body            string
		allow, answered bool
	}{
		{`{"allow":true}`, true, true},
		{`{"allow":false}`, false, true},
		{` {"reason":"x","allow":true} `, true, true},
		{`{"allow":null}`, false, false},
		{`{"allow":1}`, false, false},
		{`{"allow":"true"}`, false, false},
		{`{}`, false, false},
		{`[true]`, false, false},
		{`null`, false, false},
		{`{"allow":true} x`, false, false},
		{`{"allow":tru`, false, false},
		{``, false, false},
	} {
		allow, answered := parseInviteAnswer([]byte(c.body))
		if allow != c.allow || answered != c.answered {
			t.Errorf("parseInviteAnswer(%s) = %v, %v; want %v, %v", c.body, allow, answered, c.allow, c.answered)
		}
	}
}
