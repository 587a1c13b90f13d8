package localstack

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/timfd/fachdienst/pushgw/e2ee"
)

// PushSink stands in for a push provider and the device behind it: a Web Push receiver that holds the
// subscriber's private key, decrypts what the push gateway delivers (RFC 8291) and shows what arrived
// and when. It makes the privacy rules visible (A_22808, A_22965): the provider receives ciphertext of
// fixed size; the device reads ids and counts, never message content.
type PushSink struct {
	key  *ecdh.PrivateKey
	auth []byte
	mu   sync.Mutex
	got  []PushArrival
}

// PushArrival is one delivery as the provider saw it (size, encoding) and as the device decrypted it.
type PushArrival struct {
	At              time.Time       `json:"at"`
	Subscriber      string          `json:"subscriber"`
	ContentEncoding string          `json:"content_encoding"`
	Bytes           int             `json:"bytes"` // what the push provider carries
	Decrypted       json.RawMessage `json:"decrypted,omitempty"`
	Error           string          `json:"error,omitempty"`
}

// maxArrivals bounds what the sink keeps; maxPushBody bounds one delivery.
const (
	maxArrivals = 200
	maxPushBody = 8 << 10
	sinkPath    = "/push-sink/"
)

// loadPushSink reads the subscriber's key pair from file, or makes and stores one: pushers registered
// in an earlier run keep working.
func loadPushSink(file string) (*PushSink, error) {
	var k struct{ Key, Auth []byte }
	if raw, err := os.ReadFile(file); err == nil && json.Unmarshal(raw, &k) == nil && len(k.Auth) == 16 {
		if key, err := ecdh.P256().NewPrivateKey(k.Key); err == nil {
			return &PushSink{key: key, auth: k.Auth}, nil
		}
	}
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	auth := make([]byte, 16)
	if _, err := rand.Read(auth); err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(struct{ Key, Auth []byte }{key.Bytes(), auth})
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		return nil, err
	}
	return &PushSink{key: key, auth: auth}, nil
}

// P256dh and Auth are the subscription's keys as a pusher registers them.
func (k *PushSink) P256dh() string {
	return base64.RawURLEncoding.EncodeToString(k.key.PublicKey().Bytes())
}
func (k *PushSink) Auth() string { return base64.RawURLEncoding.EncodeToString(k.auth) }

// Arrivals returns what arrived, oldest first.
func (k *PushSink) Arrivals() []PushArrival {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]PushArrival{}, k.got...)
}

// ServeHTTP: POST /push-sink/{subscriber} receives, GET /push-sink/ lists.
func (k *PushSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, sinkPath)
	switch {
	case r.Method == http.MethodGet && name == "":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"received": k.Arrivals()})
	case r.Method == http.MethodPost && name != "" && !strings.Contains(name, "/"):
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPushBody+1))
		if err != nil || len(body) > maxPushBody {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		a := PushArrival{At: time.Now(), Subscriber: name, ContentEncoding: r.Header.Get("Content-Encoding"), Bytes: len(body)}
		if plain, err := e2ee.Decrypt(body, k.key, k.auth); err != nil {
			a.Error = err.Error()
		} else if json.Valid(plain) {
			a.Decrypted = plain
		} else {
			a.Error = "decrypted payload is not JSON"
		}
		k.mu.Lock()
		if len(k.got) == maxArrivals {
			k.got = append(k.got[:0], k.got[1:]...)
		}
		k.got = append(k.got, a)
		k.mu.Unlock()
		w.WriteHeader(http.StatusCreated) // as a Web Push service accepts a message
	default:
		http.Error(w, "POST "+sinkPath+"{subscriber} or GET "+sinkPath, http.StatusNotFound)
	}
}

// registerPusher registers a Web Push pusher for user at the homeserver, delivering through the push
// gateway to the sink (POST /_matrix/client/v3/pushers/set, as a client app does).
func (s *Stack) registerPusher(ctx context.Context, u User) error {
	local := strings.TrimPrefix(strings.SplitN(u.MXID, ":", 2)[0], "@")
	login, _ := json.Marshal(map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": local},
		"password": u.Password, "device_id": "PUSHSINK", "initial_device_display_name": "tim-local push sink"})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := postJSON(ctx, s.HomeserverURL+"/_matrix/client/v3/login", "", login, &tok); err != nil {
		return fmt.Errorf("pusher: login: %w", err)
	}
	pusher, _ := json.Marshal(map[string]any{
		"kind": "http", "app_id": pushAppID, "pushkey": s.PushSink.P256dh(),
		"app_display_name": "tim-local push sink", "device_display_name": "push sink", "lang": "de",
		"data": map[string]any{"url": "https://" + strings.TrimPrefix(s.PushURL, "http://") + "/_matrix/push/v1/notify", "endpoint": s.PushURL + sinkPath + local, "auth": s.PushSink.Auth()},
	})
	if err := postJSON(ctx, s.HomeserverURL+"/_matrix/client/v3/pushers/set", tok.AccessToken, pusher, nil); err != nil {
		return fmt.Errorf("pusher: %w", err)
	}
	return nil
}

func postJSON(ctx context.Context, u, token string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", u, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return err
		}
	}
	return nil
}
