package fcm_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/fcm"
	"github.com/timfd/fachdienst/pushgw/providertest"
	"github.com/timfd/fachdienst/pushgw/push"
)

func newSender(t *testing.T, fake *providertest.FCM, sa []byte) *fcm.Sender {
	t.Helper()
	roots, err := push.CertPool(providertest.CAPEM(fake.Server))
	require.NoError(t, err)
	s, err := fcm.New(fcm.Config{ServiceAccountJSON: sa, Endpoint: fake.Server.URL, Client: push.HTTPClient(roots, 5*time.Second)})
	require.NoError(t, err)
	return s
}

func TestOutcomes(t *testing.T) {
	fake := providertest.NewFCM("tim-test")
	defer fake.Server.Close()
	s := newSender(t, fake, fake.ServiceAccountJSON)
	dev := providertest.NewDeviceKeys().Device("app", "tok")
	cases := []struct {
		reply      providertest.Reply
		want       push.Outcome
		retryAfter time.Duration
	}{
		{providertest.Reply{Status: 200}, push.Sent, 0},
		{providertest.Unregistered, push.Reject, 0},
		{providertest.Reply{Status: 403, Body: `{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`}, push.Reject, 0},
		{providertest.Reply{Status: 400, Body: `{"error":{"code":400,"status":"INVALID_ARGUMENT"}}`}, push.Drop, 0},
		{providertest.Reply{Status: 401, Body: `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`}, push.Drop, 0},
		{providertest.Reply{Status: 429, RetryAfter: "7", Body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`}, push.Retry, 7 * time.Second},
		{providertest.Reply{Status: 500, Body: `{"error":{"code":500,"status":"INTERNAL"}}`}, push.Retry, 0},
		{providertest.Reply{Status: 503, Body: `{"error":{"code":503,"status":"UNAVAILABLE"}}`}, push.Retry, 0},
	}
	for _, tc := range cases {
		fake.SetScript(func(string, int) providertest.Reply { return tc.reply })
		res := s.Send(context.Background(), dev, push.Notice{EventID: "$e"})
		require.Equal(t, tc.want, res.Outcome, "%d %s", tc.reply.Status, tc.reply.Body)
		require.Equal(t, tc.retryAfter, res.RetryAfter)
	}
	require.Empty(t, fake.Errors())
	require.Equal(t, 1, fake.Grants())
}

// A failing token exchange is temporary: the message is retried, not lost.
func TestTokenExchangeFailureIsTemporary(t *testing.T) {
	fake := providertest.NewFCM("tim-test")
	defer fake.Server.Close()
	other := providertest.NewFCM("tim-test") // a key the fake's token endpoint does not know
	defer other.Server.Close()
	s := newSender(t, fake, []byte(replaceTokenURI(other.ServiceAccountJSON, fake.Server.URL+"/token")))
	res := s.Send(context.Background(), providertest.NewDeviceKeys().Device("app", "tok"), push.Notice{})
	require.Equal(t, push.Retry, res.Outcome)
	require.Zero(t, fake.Grants())
	require.Zero(t, fake.Attempts("tok"))
}

func replaceTokenURI(sa []byte, uri string) string {
	var m map[string]any
	mustJSON(sa, &m)
	m["token_uri"] = uri
	return toJSON(m)
}

func TestNewRefusesBadServiceAccount(t *testing.T) {
	_, err := fcm.New(fcm.Config{ServiceAccountJSON: []byte(`{"type":"service_account"}`)})
	require.Error(t, err)
	_, err = fcm.New(fcm.Config{ServiceAccountJSON: []byte(`not json`)})
	require.Error(t, err)
}
