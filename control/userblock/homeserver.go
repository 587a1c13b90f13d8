package userblock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// adminClient calls a homeserver's admin API with an admin's access token.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(baseURL, adminToken string, hc *http.Client) (adminClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return adminClient{}, fmt.Errorf("userblock: homeserver URL %q is not an absolute http(s) URL", baseURL)
	}
	if adminToken == "" {
		return adminClient{}, errors.New("userblock: an admin access token of the homeserver is required")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return adminClient{base: strings.TrimRight(baseURL, "/"), token: adminToken, http: hc}, nil
}

// StatusError is an unexpected answer of the admin API. The body is the homeserver's Matrix error code
// only: its message may name the user.
type StatusError struct {
	Op      string
	Status  int
	ErrCode string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("userblock: homeserver %s: HTTP %d %s", e.Op, e.Status, e.ErrCode)
}

// ErrUnknownUser is returned when the homeserver does not know the user.
var ErrUnknownUser = errors.New("userblock: the homeserver does not know the user")

// do sends one request; out, when not nil, receives the JSON answer of a 2xx.
func (c adminClient) do(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error carries the path, which carries the MXID.
		return fmt.Errorf("userblock: homeserver %s: unreachable", op)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("userblock: homeserver %s: reading the answer failed", op)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			ErrCode string `json:"errcode"`
		}
		_ = json.Unmarshal(raw, &e)
		if resp.StatusCode == http.StatusNotFound && (e.ErrCode == "M_NOT_FOUND" || e.ErrCode == "M_UNKNOWN") {
			return fmt.Errorf("%w (%s)", ErrUnknownUser, op)
		}
		return &StatusError{Op: op, Status: resp.StatusCode, ErrCode: e.ErrCode}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("userblock: homeserver %s: answer is not the expected JSON", op)
		}
	}
	return nil
}

// Synapse drives Synapse's admin API (synapse/rest/admin/users.py, devices.py):
//
//	Lock        PUT  /_synapse/admin/v2/users/{mxid} {"locked": true}   every request of the user is then
//	                                                                     refused with 401 M_USER_LOCKED
//	Unlock      PUT  /_synapse/admin/v2/users/{mxid} {"locked": false}
//	EndSessions GET  /_synapse/admin/v2/users/{mxid}/devices, then
//	            POST /_synapse/admin/v2/users/{mxid}/delete_devices {"devices": [...]}
//
// PUT /users/{mxid} creates a user that does not exist, so the user is looked up first.
type Synapse struct{ c adminClient }

// NewSynapse returns the Synapse admin API at baseURL (the client-server base, e.g. http://synapse:8008).
func NewSynapse(baseURL, adminToken string, hc *http.Client) (*Synapse, error) {
	c, err := newAdminClient(baseURL, adminToken, hc)
	return &Synapse{c}, err
}

func synapseUser(mxid string) string { return "/_synapse/admin/v2/users/" + url.PathEscape(mxid) }

func (s *Synapse) exists(ctx context.Context, mxid string) error {
	var u struct {
		Name string `json:"name"`
	}
	if err := s.c.do(ctx, "get_user", http.MethodGet, synapseUser(mxid), nil, &u); err != nil {
		return err
	}
	if u.Name != mxid {
		return ErrUnknownUser
	}
	return nil
}

func (s *Synapse) setLocked(ctx context.Context, mxid string, locked bool) error {
	if err := s.exists(ctx, mxid); err != nil {
		return err
	}
	return s.c.do(ctx, "lock_user", http.MethodPut, synapseUser(mxid), map[string]bool{"locked": locked}, nil)
}

// Lock locks the account and deletes its devices.
func (s *Synapse) Lock(ctx context.Context, mxid string) error {
	if err := s.setLocked(ctx, mxid, true); err != nil {
		return err
	}
	return s.EndSessions(ctx, mxid)
}

func (s *Synapse) Unlock(ctx context.Context, mxid string) error {
	return s.setLocked(ctx, mxid, false)
}

// SetPassword gives the user a new password without ending sessions
// (POST /_synapse/admin/v1/reset_password/{mxid}).
func (s *Synapse) SetPassword(ctx context.Context, mxid, password string) error {
	if err := s.exists(ctx, mxid); err != nil {
		return err
	}
	return s.c.do(ctx, "reset_password", http.MethodPost, "/_synapse/admin/v1/reset_password/"+url.PathEscape(mxid),
		map[string]any{"new_password": password, "logout_devices": false}, nil)
}

func (s *Synapse) EndSessions(ctx context.Context, mxid string) error {
	var list struct {
		Devices []struct {
			DeviceID string `json:"device_id"`
		} `json:"devices"`
	}
	if err := s.c.do(ctx, "list_devices", http.MethodGet, synapseUser(mxid)+"/devices", nil, &list); err != nil {
		return err
	}
	ids := make([]string, 0, len(list.Devices))
	for _, d := range list.Devices {
		ids = append(ids, d.DeviceID)
	}
	if len(ids) == 0 {
		return nil
	}
	return s.c.do(ctx, "delete_devices", http.MethodPost, synapseUser(mxid)+"/delete_devices", map[string][]string{"devices": ids}, nil)
}

// Dendrite drives Dendrite v0.13.8's admin API (clientapi/routing/admin.go). Dendrite has no admin
// route that locks an account or logs a user out while keeping the password; the one route that ends
// sessions replaces the password as well:
//
//	POST /_dendrite/admin/resetPassword/{mxid} {"password": <random>, "logout_devices": true}
//
// So Lock and EndSessions both set a random password nobody knows and log out every device: the user
// cannot use the homeserver until the Org-Admin sets a new password (SetPassword, the same route without
// logout). Unlock therefore does nothing at the homeserver; Unblock lifts the block at the proxies, and
// the user logs in again with the password the Org-Admin sets.
type Dendrite struct{ c adminClient }

// NewDendrite returns the Dendrite admin API at baseURL.
func NewDendrite(baseURL, adminToken string, hc *http.Client) (*Dendrite, error) {
	c, err := newAdminClient(baseURL, adminToken, hc)
	return &Dendrite{c}, err
}

func (d *Dendrite) Lock(ctx context.Context, mxid string) error { return d.EndSessions(ctx, mxid) }

func (d *Dendrite) Unlock(context.Context, string) error { return nil }

func (d *Dendrite) EndSessions(ctx context.Context, mxid string) error {
	pw, err := randomPassword()
	if err != nil {
		return err
	}
	return d.resetPassword(ctx, mxid, pw, true)
}

// SetPassword gives the user a new password; sessions stay.
func (d *Dendrite) SetPassword(ctx context.Context, mxid, password string) error {
	return d.resetPassword(ctx, mxid, password, false)
}

func (d *Dendrite) resetPassword(ctx context.Context, mxid, password string, logout bool) error {
	var out struct {
		Updated bool `json:"password_updated"`
	}
	if err := d.c.do(ctx, "reset_password", http.MethodPost, "/_dendrite/admin/resetPassword/"+url.PathEscape(mxid),
		map[string]any{"password": password, "logout_devices": logout}, &out); err != nil {
		return err
	}
	if !out.Updated {
		return errors.New("userblock: dendrite did not update the password")
	}
	return nil
}

// randomPassword is 32 random bytes, base64url: long enough for Dendrite's rules, never stored.
func randomPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
