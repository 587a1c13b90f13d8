// Package apns delivers notices to Apple's push service over HTTP/2 with
// token (JWT, ES256) authentication, using sideshow/apns2.
//
// Apple sees the device token, the topic, the priority and a fixed alert key;
// the notice itself travels in "enc", sealed for the device (package e2ee).
// The app's notification service extension decrypts it (mutable-content).
package apns

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/timfd/fachdienst/pushgw/e2ee"
	"github.com/timfd/fachdienst/pushgw/push"
)

// Production and Sandbox are Apple's endpoints.
const (
	Production = apns2.HostProduction
	Sandbox    = apns2.HostDevelopment
)

// Config configures one APNs app.
type Config struct {
	KeyP8    []byte // the .p8 signing key (PEM, PKCS#8 EC P-256)
	KeyID    string
	TeamID   string
	Topic    string // the app's bundle id
	Endpoint string // Production, Sandbox, or a test server
	LocKey   string // alert localisation key shown until the extension decrypts
	Client   *http.Client
}

// Sender pushes to APNs.
type Sender struct {
	client *apns2.Client
	topic  string
	locKey string
}

// New builds a sender; it fails on an unusable key.
func New(cfg Config) (*Sender, error) {
	key, err := token.AuthKeyFromBytes(cfg.KeyP8)
	if err != nil {
		return nil, err
	}
	if cfg.KeyID == "" || cfg.TeamID == "" || cfg.Topic == "" {
		return nil, errors.New("apns: key_id, team_id and topic are required")
	}
	c := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID})
	c.Host = cfg.Endpoint
	if c.Host == "" {
		c.Host = Production
	}
	if cfg.Client != nil {
		c.HTTPClient = cfg.Client
	}
	loc := cfg.LocKey
	if loc == "" {
		loc = "TIM_NEW_MESSAGE"
	}
	return &Sender{client: c, topic: cfg.Topic, locKey: loc}, nil
}

// Check accepts a device only with usable encryption keys.
func (s *Sender) Check(dev push.Device) error {
	return e2ee.CheckDevice(dev.DataString("p256dh"), dev.DataString("auth"))
}

type aps struct {
	Alert          map[string]string `json:"alert"`
	MutableContent int               `json:"mutable-content"`
	Sound          string            `json:"sound,omitempty"`
}

type payload struct {
	APS aps    `json:"aps"`
	Enc string `json:"enc"`
}

// Send delivers one notice.
func (s *Sender) Send(ctx context.Context, dev push.Device, n push.Notice) push.Result {
	blob, err := e2ee.SealJSON(n, dev.DataString("p256dh"), dev.DataString("auth"))
	if err != nil {
		return push.Result{Outcome: push.Reject, Reason: "bad_device_key"}
	}
	prio := apns2.PriorityHigh
	if n.Prio == "low" {
		prio = apns2.PriorityLow
	}
	note := &apns2.Notification{
		DeviceToken: dev.PushKey,
		Topic:       s.topic,
		PushType:    apns2.PushTypeAlert,
		Priority:    prio,
		Expiration:  time.Now().Add(24 * time.Hour),
		Payload: payload{
			APS: aps{Alert: map[string]string{"loc-key": s.locKey}, MutableContent: 1, Sound: "default"},
			Enc: base64.RawURLEncoding.EncodeToString(blob),
		},
	}
	res, err := s.client.PushWithContext(ctx, note)
	if err != nil {
		return push.Result{Outcome: push.Retry, Reason: "network"}
	}
	return classify(res.StatusCode, res.Reason)
}

func classify(code int, reason string) push.Result {
	if o, ok := push.ClassifyStatus(code); ok {
		return push.Result{Outcome: o, Reason: push.StatusReason(code)}
	}
	switch {
	case code == http.StatusGone, reason == apns2.ReasonUnregistered,
		reason == apns2.ReasonBadDeviceToken, reason == apns2.ReasonDeviceTokenNotForTopic:
		return push.Result{Outcome: push.Reject, Reason: reason}
	case reason == apns2.ReasonExpiredProviderToken:
		// apns2 renews the JWT on the next request.
		return push.Result{Outcome: push.Retry, Reason: reason}
	}
	return push.Result{Outcome: push.Drop, Reason: reason}
}
