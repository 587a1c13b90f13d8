// Package webpush delivers notices with the Web Push protocol (RFC 8030):
// VAPID authentication (RFC 8292) and payload encryption for the browser's
// subscription key (RFC 8291), both done by SherClockHolmes/webpush-go.
//
// Pusher convention (as Sygnal's webpush pushkin): the pushkey is the
// subscription's p256dh key, data.endpoint the push service URL, data.auth the
// subscription's auth secret.
package webpush

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	wp "github.com/SherClockHolmes/webpush-go"

	"github.com/timfd/fachdienst/pushgw/e2ee"
	"github.com/timfd/fachdienst/pushgw/push"
)

// recordSize fixes the encrypted body at 512 bytes whatever the ids' lengths.
const recordSize = 512

// Config configures one Web Push app.
type Config struct {
	VAPIDPublicKey  string
	VAPIDPrivateKey string
	Subscriber      string // mailto: or https: contact for the push service
	TTL             int    // seconds the push service keeps an undelivered message
	// AllowedEndpoints are URL prefixes a subscription endpoint must start
	// with. Empty means any https URL. The endpoint comes from the client, so
	// this keeps the gateway from being used to reach arbitrary hosts.
	AllowedEndpoints []string
	Client           *http.Client
}

// Sender pushes to Web Push services.
type Sender struct {
	cfg Config
}

// New builds a sender.
func New(cfg Config) (*Sender, error) {
	if cfg.VAPIDPublicKey == "" || cfg.VAPIDPrivateKey == "" || cfg.Subscriber == "" {
		return nil, errors.New("webpush: vapid_public_key, vapid_private_key and subscriber are required")
	}
	if cfg.Client == nil {
		cfg.Client = push.HTTPClient(nil, 0)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 3600
	}
	return &Sender{cfg: cfg}, nil
}

// Check accepts a device with an allowed endpoint and a usable key pair.
func (s *Sender) Check(dev push.Device) error {
	if !s.allowed(dev.DataString("endpoint")) {
		return errors.New("webpush: endpoint not allowed")
	}
	return e2ee.CheckDevice(dev.PushKey, dev.DataString("auth"))
}

func (s *Sender) allowed(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if len(s.cfg.AllowedEndpoints) == 0 {
		return u.Scheme == "https"
	}
	for _, p := range s.cfg.AllowedEndpoints {
		if strings.HasPrefix(endpoint, p) {
			return true
		}
	}
	return false
}

// Send delivers one notice.
func (s *Sender) Send(ctx context.Context, dev push.Device, n push.Notice) push.Result {
	if s.Check(dev) != nil {
		return push.Result{Outcome: push.Reject, Reason: "bad_subscription"}
	}
	msg, _ := json.Marshal(n)
	urgency := wp.UrgencyHigh
	if n.Prio == "low" {
		urgency = wp.UrgencyNormal
	}
	resp, err := wp.SendNotificationWithContext(ctx, msg, &wp.Subscription{
		Endpoint: dev.DataString("endpoint"),
		Keys:     wp.Keys{Auth: dev.DataString("auth"), P256dh: dev.PushKey},
	}, &wp.Options{
		HTTPClient:      s.cfg.Client,
		RecordSize:      recordSize,
		Subscriber:      s.cfg.Subscriber,
		TTL:             s.cfg.TTL,
		Urgency:         urgency,
		VAPIDPublicKey:  s.cfg.VAPIDPublicKey,
		VAPIDPrivateKey: s.cfg.VAPIDPrivateKey,
	})
	if err != nil {
		if ctx.Err() != nil || isNetErr(err) {
			return push.Result{Outcome: push.Retry, Reason: "network"}
		}
		return push.Result{Outcome: push.Drop, Reason: "encrypt"}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if o, ok := push.ClassifyStatus(resp.StatusCode); ok {
		return push.Result{Outcome: o, RetryAfter: push.ParseRetryAfter(resp.Header.Get("Retry-After")), Reason: push.StatusReason(resp.StatusCode)}
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		return push.Result{Outcome: push.Reject, Reason: "subscription_gone"}
	}
	return push.Result{Outcome: push.Drop, Reason: push.StatusReason(resp.StatusCode)}
}

func isNetErr(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}
