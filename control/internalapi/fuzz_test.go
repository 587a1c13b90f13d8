package internalapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzInvitePermission: whatever the body, the answer is 200 with a boolean "allow", a precise 4xx, or the
// fail-closed 503 — never a crash or another status.
func FuzzInvitePermission(f *testing.F) {
	for _, seed := range []string{
		`{"inviter":"@a:a.example.de","invitee":"@allowed:b.example.de"}`,
		`{"inviter":"@a:a.example.de","invitee":"@broken:b.example.de"}`,
		`{"inviter":"@a:[::1]:8448","invitee":"@b:1.2.3.4"}`,
		`{"inviter":1,"invitee":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	s := newStack(f, true)
	h := s.api.Config.Handler
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/internal/v1/invite-permission", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
			var ans struct {
				Allow *bool `json:"allow"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Allow == nil {
				t.Fatalf("200 without a boolean allow: %s", w.Body.Bytes())
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%d with a non-JSON body", w.Code)
			}
		default:
			t.Fatalf("unexpected status %d for %q", w.Code, body)
		}
	})
}
