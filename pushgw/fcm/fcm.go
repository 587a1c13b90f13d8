// Package fcm delivers notices through Firebase Cloud Messaging HTTP v1
// (POST {endpoint}/v1/projects/{project}/messages:send), authenticated with a
// service account's OAuth2 JWT grant (golang.org/x/oauth2/google).
//
// Google sees the registration token, the priority and an opaque data field
// "enc" with the notice sealed for the device (package e2ee). Messages are
// data-only so that the app decides what to show after decrypting.
package fcm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/timfd/fachdienst/pushgw/e2ee"
	"github.com/timfd/fachdienst/pushgw/push"
)

// DefaultEndpoint is Google's FCM API.
const DefaultEndpoint = "https://fcm.googleapis.com"

const scope = "https://www.googleapis.com/auth/firebase.messaging"

// Config configures one FCM app.
type Config struct {
	ServiceAccountJSON []byte // the service account key; its token_uri is used for the token exchange
	ProjectID          string // defaults to the service account's project_id
	Endpoint           string // defaults to DefaultEndpoint
	Client             *http.Client
}

// Sender pushes to FCM.
type Sender struct {
	client *http.Client
	url    string
}

// New builds a sender; it fails on an unusable service account.
func New(cfg Config) (*Sender, error) {
	jwtConf, err := google.JWTConfigFromJSON(cfg.ServiceAccountJSON, scope)
	if err != nil {
		return nil, err
	}
	project := cfg.ProjectID
	if project == "" {
		var sa struct {
			ProjectID string `json:"project_id"`
		}
		_ = json.Unmarshal(cfg.ServiceAccountJSON, &sa)
		project = sa.ProjectID
	}
	if project == "" {
		return nil, errors.New("fcm: project_id is required")
	}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	base := cfg.Client
	if base == nil {
		base = push.HTTPClient(nil, 0)
	}
	// The token exchange goes through the same client (and trusted roots).
	ts := jwtConf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, base))
	client := &http.Client{
		Transport: &oauth2.Transport{Source: ts, Base: base.Transport},
		Timeout:   base.Timeout,
	}
	return &Sender{client: client, url: endpoint + "/v1/projects/" + url.PathEscape(project) + "/messages:send"}, nil
}

// Check accepts a device only with usable encryption keys.
func (s *Sender) Check(dev push.Device) error {
	return e2ee.CheckDevice(dev.DataString("p256dh"), dev.DataString("auth"))
}

type message struct {
	Message struct {
		Token   string            `json:"token"`
		Data    map[string]string `json:"data"`
		Android struct {
			Priority string `json:"priority"`
		} `json:"android"`
	} `json:"message"`
}

type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// Send delivers one notice.
func (s *Sender) Send(ctx context.Context, dev push.Device, n push.Notice) push.Result {
	blob, err := e2ee.SealJSON(n, dev.DataString("p256dh"), dev.DataString("auth"))
	if err != nil {
		return push.Result{Outcome: push.Reject, Reason: "bad_device_key"}
	}
	var m message
	m.Message.Token = dev.PushKey
	m.Message.Data = map[string]string{"enc": base64.RawURLEncoding.EncodeToString(blob)}
	m.Message.Android.Priority = "high"
	if n.Prio == "low" {
		m.Message.Android.Priority = "normal"
	}
	body, _ := json.Marshal(m)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return push.Result{Outcome: push.Drop, Reason: "request"}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// Includes a failed token exchange: temporary until retries run out.
		return push.Result{Outcome: push.Retry, Reason: "network"}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if o, ok := push.ClassifyStatus(resp.StatusCode); ok {
		return push.Result{Outcome: o, RetryAfter: push.ParseRetryAfter(resp.Header.Get("Retry-After")), Reason: push.StatusReason(resp.StatusCode)}
	}
	var ae apiError
	_ = json.Unmarshal(raw, &ae)
	code := ae.Error.Status
	for _, d := range ae.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound, code == "UNREGISTERED", code == "SENDER_ID_MISMATCH":
		return push.Result{Outcome: push.Reject, Reason: strings.ToLower(orDefault(code, "not_found"))}
	}
	return push.Result{Outcome: push.Drop, Reason: strings.ToLower(orDefault(code, push.StatusReason(resp.StatusCode)))}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
