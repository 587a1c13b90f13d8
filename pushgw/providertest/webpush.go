package providertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	wp "github.com/SherClockHolmes/webpush-go"

	"github.com/timfd/fachdienst/pushgw/e2ee"
)

// WebPush is a fake Web Push service and browser in one: it checks the VAPID
// authorization, then decrypts each body with the subscriber's private key
// (RFC 8291) and records the plaintext.
type WebPush struct {
	recorder
	Server          *httptest.Server
	VAPIDPublicKey  string
	VAPIDPrivateKey string

	mu   sync.Mutex
	subs map[string]DeviceKeys // subscription id -> keys
}

// NewWebPush starts the fake (plain HTTP on loopback) with fresh VAPID keys.
func NewWebPush() *WebPush {
	priv, pub, err := wp.GenerateVAPIDKeys()
	if err != nil {
		panic(err)
	}
	f := &WebPush{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, subs: map[string]DeviceKeys{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Subscribe creates a subscription: the endpoint and keys a browser would
// hand to the app, which registers them as pusher (pushkey = p256dh).
func (f *WebPush) Subscribe(id string) (endpoint string, keys DeviceKeys) {
	keys = NewDeviceKeys()
	f.mu.Lock()
	f.subs[id] = keys
	f.mu.Unlock()
	return f.Server.URL + "/push/" + id, keys
}

func (f *WebPush) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/push/")
	f.mu.Lock()
	keys, known := f.subs[id]
	f.mu.Unlock()
	if !ok || r.Method != http.MethodPost || !known {
		reply(w, Reply{Status: 404})
		return
	}
	if !f.vapidValid(r.Header.Get("Authorization")) {
		f.fail("webpush: invalid VAPID authorization")
		reply(w, Reply{Status: 401})
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
		f.fail("webpush: missing Content-Encoding or TTL")
		reply(w, Reply{Status: 400})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	plain, err := e2ee.Decrypt(body, keys.Private, keys.Auth)
	if err != nil {
		f.fail("webpush: payload does not decrypt")
		reply(w, Reply{Status: 400})
		return
	}
	pushKey := keys.P256dh()
	_, rep := f.next(pushKey)
	if rep.Status == 200 {
		rep.Status = 201
	}
	f.add(Push{PushKey: pushKey, Body: plain, Status: rep.Status, Headers: map[string]string{
		"Urgency": r.Header.Get("Urgency"), "Content-Length": r.Header.Get("Content-Length"),
	}})
	reply(w, rep)
}

// vapidValid checks "vapid t=<ES256 JWT>, k=<public key>" (RFC 8292): the
// key must be the configured one, the JWT signed by it, aud this origin.
func (f *WebPush) vapidValid(h string) bool {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return false
	}
	var t, k string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			t = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	want, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(f.VAPIDPublicKey, "="))
	got, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil || string(got) != string(want) || len(got) != 65 {
		return false
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(got[1:33]), Y: new(big.Int).SetBytes(got[33:])}
	_, claims, err := verifyJWT(t, pub)
	return err == nil && claims["aud"] == f.Server.URL && claims["sub"] != nil
}
