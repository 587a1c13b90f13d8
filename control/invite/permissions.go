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

// HomeserverPermissions reads a local user's permission configuration from the homeserver's
// account data through the Synapse admin API (GET /_synapse/admin/v1/users/{userId}/accountdata).
type HomeserverPermissions struct {
	base   string
	token  string
	client *http.Client
}

// NewHomeserverPermissions asks the homeserver at baseURL with the admin access token.
func NewHomeserverPermissions(baseURL, adminToken string, timeout time.Duration) *HomeserverPermissions {
	return &HomeserverPermissions{base: strings.TrimRight(baseURL, "/"), token: adminToken, client: &http.Client{Timeout: timeout}}
}

// PermissionConfig implements PermissionSource. A user without the account data, or unknown to the
// homeserver, has no configuration (nil, nil).
func (h *HomeserverPermissions) PermissionConfig(ctx context.Context, mxid, variant string) (map[string]any, error) {
	typ, ok := permissionTypes[variant]
	if !ok {
		return nil, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/_synapse/admin/v1/users/"+url.PathEscape(mxid)+"/accountdata", nil)
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
		return nil, nil
	default:
		return nil, fmt.Errorf("homeserver answered %d", resp.StatusCode)
	}
	var doc struct {
		AccountData struct {
			Global map[string]json.RawMessage `json:"global"`
		} `json:"account_data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("homeserver answer: %w", err)
	}
	raw, ok := doc.AccountData.Global[typ]
	if !ok {
		return nil, nil
	}
	var pc map[string]any
	if err := json.Unmarshal(raw, &pc); err != nil || pc == nil {
		// A configuration that is not an object is passed as such, and the policy denies on it.
		return map[string]any{"defaultSetting": "unreadable"}, nil
	}
	return pc, nil
}
