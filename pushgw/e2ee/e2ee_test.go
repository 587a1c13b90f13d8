package e2ee_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	wp "github.com/SherClockHolmes/webpush-go"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/e2ee"
)

func newDevice(t *testing.T) (*ecdh.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return k, auth
}

func TestRoundTripAndPadding(t *testing.T) {
	priv, auth := newDevice(t)
	for _, plain := range []string{"", `{"event_id":"$a"}`, `{"event_id":"$` + string(bytes.Repeat([]byte("x"), 200)) + `"}`} {
		body, err := e2ee.Encrypt([]byte(plain), priv.PublicKey(), auth, e2ee.PadTo)
		require.NoError(t, err)
		// Same length whatever the plaintext: ids' lengths do not show.
		require.Len(t, body, 86+e2ee.PadTo+16)
		require.NotContains(t, string(body), "event_id")
		got, err := e2ee.Decrypt(body, priv, auth)
		require.NoError(t, err)
		require.Equal(t, plain, string(got))
	}
}

func TestDecryptRefusesTamperingAndWrongKeys(t *testing.T) {
	priv, auth := newDevice(t)
	other, otherAuth := newDevice(t)
	body, err := e2ee.Encrypt([]byte("hello"), priv.PublicKey(), auth, 0)
	require.NoError(t, err)
	flipped := bytes.Clone(body)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		body []byte
		key  *ecdh.PrivateKey
		auth []byte
	}{
		"flipped bit":  {flipped, priv, auth},
		"wrong key":    {body, other, auth},
		"wrong auth":   {body, priv, otherAuth},
		"truncated":    {body[:50], priv, auth},
		"empty":        {nil, priv, auth},
		"header only":  {body[:86], priv, auth},
		"garbage salt": {append(bytes.Repeat([]byte{1}, 21), body[21:]...), priv, auth},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e2ee.Decrypt(tc.body, tc.key, tc.auth)
			require.ErrorIs(t, err, e2ee.ErrDecrypt)
		})
	}
}

type capture struct{ body []byte }

func (c *capture) Do(r *http.Request) (*http.Response, error) {
	c.body, _ = io.ReadAll(r.Body)
	return &http.Response{StatusCode: 201, Body: io.NopCloser(bytes.NewReader(nil))}, nil
}

// Decrypt agrees with an independent RFC 8291 sender (webpush-go), which
// also validates Encrypt through the round trip above.
func TestDecryptWebPushGoOutput(t *testing.T) {
	priv, auth := newDevice(t)
	vPriv, vPub, err := wp.GenerateVAPIDKeys()
	require.NoError(t, err)
	c := &capture{}
	_, err = wp.SendNotification([]byte(`{"room_id":"!r:x"}`), &wp.Subscription{
		Endpoint: "https://push.example/sub",
		Keys: wp.Keys{
			P256dh: base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			Auth:   base64.RawURLEncoding.EncodeToString(auth),
		},
	}, &wp.Options{HTTPClient: c, Subscriber: "ops@example.org", VAPIDPublicKey: vPub, VAPIDPrivateKey: vPriv, TTL: 60})
	require.NoError(t, err)
	got, err := e2ee.Decrypt(c.body, priv, auth)
	require.NoError(t, err)
	require.Equal(t, `{"room_id":"!r:x"}`, string(got))
}

func TestKeysValidation(t *testing.T) {
	priv, auth := newDevice(t)
	pub := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	a := base64.RawURLEncoding.EncodeToString(auth)
	cases := []struct {
		name, p256dh, auth string
		ok                 bool
	}{
		{"url-safe", pub, a, true},
		{"std padded", base64.StdEncoding.EncodeToString(priv.PublicKey().Bytes()), base64.StdEncoding.EncodeToString(auth), true},
		{"missing key", "", a, false},
		{"missing auth", pub, "", false},
		{"short auth", pub, a[:10], false},
		{"not a point", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{4}, 65)), a, false},
		{"not base64", "!!!", a, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e2ee.CheckDevice(tc.p256dh, tc.auth)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, e2ee.ErrKey)
			}
		})
	}
}
