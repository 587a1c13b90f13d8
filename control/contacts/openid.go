package contacts

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/timfd/fachdienst/control/ttlcache"
	"github.com/timfd/fachdienst/wasm/matrix"
)

// Verifier resolves a Matrix OpenID token to the MXID it was issued for.
type Verifier interface {
	// Verify returns ErrInvalidToken when the token is unknown or expired, another error when the
	// answer could not be obtained.
	Verify(ctx context.Context, token string) (mxid string, err error)
}

// ErrInvalidToken means the homeserver does not know the token.
var ErrInvalidToken = errors.New("contacts: invalid OpenID token")

// OpenID verifies tokens at the homeserver's /_matrix/federation/v1/openid/userinfo and caches
// valid ones briefly: a client calls the API several times in a row with one token, and the cache
// spares the homeserver those round trips. Invalid tokens are not cached, so a token becomes
// usable as soon as the homeserver knows it; a revoked token stays usable for at most the TTL.
type OpenID struct {
	base   string
	client *http.Client
	cache  *ttlcache.Cache[[sha256.Size]byte, string]
}

// maxUserinfoBytes bounds the homeserver's answer ({"sub": "@user:server"}).
const maxUserinfoBytes = 16 << 10

// NewOpenID returns a verifier asking the homeserver at baseURL, caching up to cacheSize tokens for ttl.
func NewOpenID(baseURL string, client *http.Client, cacheSize int, ttl time.Duration) *OpenID {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return &OpenID{base: strings.TrimRight(baseURL, "/"), client: client, cache: ttlcache.New[[sha256.Size]byte, string](cacheSize, ttl)}
}

// Cache exposes the token cache so tests can move its clock.
func (o *OpenID) Cache() *ttlcache.Cache[[sha256.Size]byte, string] { return o.cache }

// Verify implements Verifier. Tokens are cached by their SHA-256, never in clear.
func (o *OpenID) Verify(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 1024 {
		return "", ErrInvalidToken
	}
	key := sha256.Sum256([]byte(token))
	if mxid, ok := o.cache.Get(key); ok {
		return mxid, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+"/_matrix/federation/v1/openid/userinfo?access_token="+url.QueryEscape(token), nil)
	if err != nil {
		return "", err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		// The URL carries the token: never pass the *url.Error text on.
		return "", errors.New("contacts: homeserver unreachable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserinfoBytes))
	if err != nil {
		return "", errors.New("contacts: reading homeserver answer failed")
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return "", ErrInvalidToken
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("contacts: homeserver answered %d", resp.StatusCode)
	}
	var info struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("contacts: homeserver answer: %w", err)
	}
	if _, _, err := matrix.ParseUserID(info.Sub); err != nil {
		return "", errors.New("contacts: homeserver answered no valid MXID")
	}
	o.cache.Put(key, info.Sub)
	return info.Sub, nil
}
