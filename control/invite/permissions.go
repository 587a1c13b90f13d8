package invite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Account data types of the TI-M permission configuration (permissionConfig_V1).
var permissionTypes = map[string]string{
	"pro": "de.gematik.tim.account.permissionconfig.pro.v1",
	"epa": "de.gematik.tim.account.permissionconfig.epa.v1",
}

// maxAccountDataBytes bounds the homeserver's answer.
const maxAccountDataBytes = 1 << 20

// The ways a homeserver lets the control plane read another user's account data.
const (
	// APISynapseAdmin is Synapse's admin API (GET /_synapse/admin/v1/users/{userId}/accountdata)
	// with an admin's access token.
	APISynapseAdmin = "synapse-admin"
	// APIAppservice is the client-server API (GET /_matrix/client/v3/user/{userId}/account_data/{type})
	// with an application service's as_token, masquerading as the user (?user_id=). Every homeserver
	// that implements application services answers it (Synapse, Dendrite); the service's users
	// namespace must cover the provider's users.
	APIAppservice = "appservice"
)

// ErrNoEndpoint means the homeserver does not implement the API the control plane was configured
// to read account data with (404 M_UNRECOGNIZED, or a 404 that is not a Matrix error). It is not
// "no configuration": a permission check that cannot read the configuration fails closed.
var ErrNoEndpoint = errors.New("homeserver does not implement the configured account data API (homeserver.account_data_api)")

// HomeserverPermissions reads a local user's permission configuration from the homeserver's
// account data, through the API named at construction.
type HomeserverPermissions struct {
	api    string
	base   string
	token  string
	client *http.Client
}

// NewHomeserverPermissions asks the homeserver at baseURL through Synapse's admin API with the
// admin access token.
func NewHomeserverPermissions(baseURL, adminToken string, timeout time.Duration) *HomeserverPermissions {
	p, _ := NewAccountDataPermissions(APISynapseAdmin, baseURL, adminToken, timeout)
	return p
}

// NewAccountDataPermissions asks the homeserver at baseURL through api (APISynapseAdmin or
// APIAppservice) with token (an admin's access token, or the application service's as_token).
func NewAccountDataPermissions(api, baseURL, token string, timeout time.Duration) (*HomeserverPermissions, error) {
	if api != APISynapseAdmin && api != APIAppservice {
		return nil, fmt.Errorf("invite: unknown account data API %q", api)
	}
	return &HomeserverPermissions{api: api, base: strings.TrimRight(baseURL, "/"), token: token, client: &http.Client{Timeout: timeout}}, nil
}

// PermissionConfig implements PermissionSource. A user without the account data, or (Synapse
// admin API) unknown to the homeserver, has no configuration (nil, nil). A homeserver that does not
// implement the API answers with ErrNoEndpoint; any other failure is an error too.
func (h *HomeserverPermissions) PermissionConfig(ctx context.Context, mxid, variant string) (map[string]any, error) {
	typ, ok := permissionTypes[variant]
	if !ok {
		return nil, nil
	}
	u := h.base + "/_synapse/admin/v1/users/" + url.PathEscape(mxid) + "/accountdata"
	if h.api == APIAppservice {
		u = h.base + "/_matrix/client/v3/user/" + url.PathEscape(mxid) + "/account_data/" + url.PathEscape(typ) +
			"?user_id=" + url.QueryEscape(mxid)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, errors.New("homeserver unreachable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAccountDataBytes))
	if err != nil {
		return nil, errors.New("reading homeserver answer failed")
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		// M_NOT_FOUND is the spec's "no such account data" (client API) and Synapse's "no such
		// user" (admin API). Anything else - M_UNRECOGNIZED, an HTML page - is a missing endpoint.
		var e struct {
			Errcode string `json:"errcode"`
		}
		if json.Unmarshal(body, &e) == nil && e.Errcode == "M_NOT_FOUND" {
			return nil, nil
		}
		return nil, ErrNoEndpoint
	default:
		return nil, fmt.Errorf("homeserver answered %d", resp.StatusCode)
	}
	raw := json.RawMessage(body)
	if h.api == APISynapseAdmin {
		var doc struct {
			AccountData struct {
				Global map[string]json.RawMessage `json:"global"`
			} `json:"account_data"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("homeserver answer: %w", err)
		}
		if raw, ok = doc.AccountData.Global[typ]; !ok {
			return nil, nil
		}
	}
	var pc map[string]any
	if err := json.Unmarshal(raw, &pc); err != nil || pc == nil {
		// A configuration that is not an object is passed as such, and the policy denies on it.
		return map[string]any{"defaultSetting": "unreadable"}, nil
	}
	return pc, nil
}
