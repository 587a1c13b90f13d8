package webpush_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/providertest"
	"github.com/timfd/fachdienst/pushgw/push"
	"github.com/timfd/fachdienst/pushgw/webpush"
)

func newSender(t *testing.T, fake *providertest.WebPush, allowed ...string) *webpush.Sender {
	t.Helper()
	s, err := webpush.New(webpush.Config{VAPIDPublicKey: fake.VAPIDPublicKey, VAPIDPrivateKey: fake.VAPIDPrivateKey,
		Subscriber: "mailto:ops@example.org", AllowedEndpoints: allowed})
	require.NoError(t, err)
	return s
}

func TestOutcomesAndEncryptedPayload(t *testing.T) {
	fake := providertest.NewWebPush()
	defer fake.Server.Close()
	s := newSender(t, fake, fake.Server.URL+"/push/")
	ep, keys := fake.Subscribe("sub1")
	dev := keys.WebDevice("app", ep)
	cases := []struct {
		reply providertest.Reply
		want  push.Outcome
	}{
		{providertest.Reply{Status: 201}, push.Sent},
		{providertest.Reply{Status: 404}, push.Reject},
		{providertest.Reply{Status: 410}, push.Reject},
		{providertest.Reply{Status: 413}, push.Drop},
		{providertest.Reply{Status: 400}, push.Drop},
		{providertest.Reply{Status: 429, RetryAfter: "3"}, push.Retry},
		{providertest.Reply{Status: 500}, push.Retry},
		{providertest.Reply{Status: 502}, push.Retry},
	}
	n := push.Notice{EventID: "$ev", RoomID: "!r:example.org", Prio: "low", Counts: push.Counts{Unread: 1}}
	for _, tc := range cases {
		fake.SetScript(func(string, int) providertest.Reply { return tc.reply })
		res := s.Send(context.Background(), dev, n)
		require.Equal(t, tc.want, res.Outcome, "%d", tc.reply.Status)
	}
	require.Empty(t, fake.Errors(), "VAPID valid and every body decrypted")
	for _, p := range fake.Pushes() {
		var got push.Notice
		require.NoError(t, json.Unmarshal(p.Body, &got))
		require.Equal(t, n, got)
		require.Equal(t, "normal", p.Headers["Urgency"])
	}
}

func TestEndpointPolicy(t *testing.T) {
	fake := providertest.NewWebPush()
	defer fake.Server.Close()
	keys := providertest.NewDeviceKeys()
	open := newSender(t, fake)
	pinned := newSender(t, fake, "https://push.example.org/")
	cases := []struct {
		name     string
		s        *webpush.Sender
		endpoint string
		ok       bool
	}{
		{"https allowed by default", open, "https://fcm.googleapis.com/fcm/send/abc", true},
		{"http refused by default", open, "http://fcm.googleapis.com/fcm/send/abc", false},
		{"credentials in URL refused", open, "https://user:pw@push.example.org/x", false},
		{"not a URL", open, "::", false},
		{"empty", open, "", false},
		{"listed prefix", pinned, "https://push.example.org/sub/1", true},
		{"other host", pinned, "https://evil.example.net/sub/1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Check(keys.WebDevice("app", tc.endpoint))
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
