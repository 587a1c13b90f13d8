package apns_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/apns"
	"github.com/timfd/fachdienst/pushgw/providertest"
	"github.com/timfd/fachdienst/pushgw/push"
)

func newSender(t *testing.T, fake *providertest.APNs, keyID string) *apns.Sender {
	t.Helper()
	roots, err := push.CertPool(providertest.CAPEM(fake.Server))
	require.NoError(t, err)
	s, err := apns.New(apns.Config{KeyP8: fake.KeyP8, KeyID: keyID, TeamID: fake.TeamID, Topic: fake.Topic,
		Endpoint: fake.Server.URL, Client: push.HTTPClient(roots, 0)})
	require.NoError(t, err)
	return s
}

func TestOutcomes(t *testing.T) {
	fake := providertest.NewAPNs("de.example.tim")
	defer fake.Server.Close()
	s := newSender(t, fake, fake.KeyID)
	keys := providertest.NewDeviceKeys()
	cases := []struct {
		reply providertest.Reply
		want  push.Outcome
	}{
		{providertest.Reply{Status: 200}, push.Sent},
		{providertest.Reply{Status: 410, Body: `{"reason":"Unregistered","timestamp":1}`}, push.Reject},
		{providertest.Reply{Status: 400, Body: `{"reason":"BadDeviceToken"}`}, push.Reject},
		{providertest.Reply{Status: 400, Body: `{"reason":"DeviceTokenNotForTopic"}`}, push.Reject},
		{providertest.Reply{Status: 400, Body: `{"reason":"PayloadTooLarge"}`}, push.Drop},
		{providertest.Reply{Status: 403, Body: `{"reason":"InvalidProviderToken"}`}, push.Drop},
		{providertest.Reply{Status: 403, Body: `{"reason":"ExpiredProviderToken"}`}, push.Retry},
		{providertest.Reply{Status: 429, Body: `{"reason":"TooManyRequests"}`}, push.Retry},
		{providertest.Reply{Status: 500, Body: `{"reason":"InternalServerError"}`}, push.Retry},
		{providertest.Reply{Status: 503, Body: `{"reason":"ServiceUnavailable"}`}, push.Retry},
	}
	for _, tc := range cases {
		fake.SetScript(func(string, int) providertest.Reply { return tc.reply })
		res := s.Send(context.Background(), keys.Device("app", "tok"), push.Notice{EventID: "$e"})
		require.Equal(t, tc.want, res.Outcome, "%d %s", tc.reply.Status, tc.reply.Body)
	}
	require.Empty(t, fake.Errors())
}

func TestWrongSigningKeyIsNotAccepted(t *testing.T) {
	fake := providertest.NewAPNs("de.example.tim")
	defer fake.Server.Close()
	s := newSender(t, fake, "OTHERKEYID") // the fake checks kid
	res := s.Send(context.Background(), providertest.NewDeviceKeys().Device("app", "tok"), push.Notice{})
	require.Equal(t, push.Drop, res.Outcome)
	require.Equal(t, "InvalidProviderToken", res.Reason)
}

func TestNetworkErrorIsTemporary(t *testing.T) {
	fake := providertest.NewAPNs("de.example.tim")
	s := newSender(t, fake, fake.KeyID)
	fake.Server.Close()
	res := s.Send(context.Background(), providertest.NewDeviceKeys().Device("app", "tok"), push.Notice{})
	require.Equal(t, push.Retry, res.Outcome)
}

func TestCheckNeedsKeys(t *testing.T) {
	fake := providertest.NewAPNs("de.example.tim")
	defer fake.Server.Close()
	s := newSender(t, fake, fake.KeyID)
	require.Error(t, s.Check(push.Device{PushKey: "tok"}))
	require.NoError(t, s.Check(providertest.NewDeviceKeys().Device("app", "tok")))
}
