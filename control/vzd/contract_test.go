package vzd_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/vzd"
	standin "github.com/timfd/fachdienst/standin/vzd"
	"github.com/timfd/fachdienst/standin/vzd/vzdcontract"
)

// Every request the client sends, and every answer it is given, validated against the provider
// services 1.4.0 and the authenticate service's files.
func TestClientAgainstInterfaceFiles(t *testing.T) {
	cs := vzdcontract.New(t, standin.WithClient("fd", "s3cret"), standin.WithLocation("@doc:a.example.de", "orgPract"),
		standin.WithDomains(standin.Domain{Domain: "a.example.de", TelematikID: "1-a"}))
	sv, services, auth := cs.VZD, cs.Services, cs.Auth
	sv.AddDomain(standin.Domain{Domain: "foreign.example.de", TelematikID: "1-f", TimAnbieter: "ORG-0058:BT-0158"})

	for _, alg := range []string{"BP256R1", "ES256"} {
		c, err := vzd.New(vzd.Config{BaseURL: cs.URL, ClientID: "fd", ClientSecret: "s3cret", SigAlg: alg, MaxAttempts: 1})
		require.NoError(t, err)
		ctx := context.Background()

		jws, current, err := c.FederationList(ctx, 0)
		require.NoError(t, err)
		assert.False(t, current)
		assert.Equal(t, 3, strings.Count(string(jws), ".")+1)
		_, current, err = c.FederationList(ctx, 1000)
		require.NoError(t, err)
		assert.True(t, current)

		loc, err := c.Localize(ctx, "@doc:a.example.de")
		require.NoError(t, err)
		assert.Equal(t, vzd.OrgPract, loc)
		loc, err = c.Localize(ctx, "@nobody:a.example.de")
		require.NoError(t, err)
		assert.Equal(t, vzd.None, loc)

		name := strings.ToLower(alg) + ".example.de"
		d, err := c.AddDomain(ctx, vzd.Domain{Domain: name, TelematikID: "1-n", TimAnbieter: "ignored", RedirectDomains: []string{"alt." + name}})
		require.NoError(t, err)
		assert.Equal(t, []string{"alt." + name}, d.RedirectDomains, "redirectDomains kept")
		assert.Equal(t, "fd", d.TimAnbieter)
		_, err = c.AddDomain(ctx, vzd.Domain{Domain: name, TelematikID: "1-n"})
		assert.True(t, errors.Is(err, vzd.ErrConflict), "%v", err)
		_, err = c.AddDomain(ctx, vzd.Domain{Domain: "kk-" + name, TelematikID: "8-k", IsInsurance: true, IK: []string{"108433248"}})
		require.NoError(t, err)

		got, err := c.Domains(ctx, name)
		require.NoError(t, err)
		require.Len(t, got, 1)
		_, err = c.Domains(ctx, "foreign.example.de")
		assert.True(t, errors.Is(err, vzd.ErrForbidden), "%v", err)
		all, err := c.Domains(ctx, "")
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(all), 3)

		d.RedirectDomains = []string{"alt2." + name}
		d, err = c.UpdateDomain(ctx, d)
		require.NoError(t, err)
		assert.Equal(t, []string{"alt2." + name}, d.RedirectDomains)
		_, err = c.UpdateDomain(ctx, vzd.Domain{Domain: "foreign.example.de", TelematikID: "1-f"})
		assert.True(t, errors.Is(err, vzd.ErrForbidden), "%v", err)

		// Another provider's domain: the client's 403 path.
		err = c.DeleteDomain(ctx, "foreign.example.de")
		assert.True(t, errors.Is(err, vzd.ErrForbidden), "%v", err)
		require.NoError(t, c.DeleteDomain(ctx, name))
		assert.True(t, errors.Is(c.DeleteDomain(ctx, name), vzd.ErrNotFound))

		inactive, err := c.FederationCheck(ctx)
		require.NoError(t, err)
		assert.Empty(t, inactive)
		sv.SetInactive("kk-"+name, true)
		inactive, err = c.FederationCheck(ctx)
		require.NoError(t, err)
		require.Len(t, inactive, 1)
		assert.Equal(t, []string{"108433248"}, inactive[0].IK)
		sv.SetInactive("kk-"+name, false)
	}
	assert.Empty(t, services.Violations())
	assert.Empty(t, auth.Violations())
	assert.GreaterOrEqual(t, services.Checked(), 30)
	assert.Equal(t, 2, auth.Checked(), "one provider token per client")
	assert.Equal(t, []string{"POST " + standin.TokenPath, "POST " + standin.TokenPath}, cs.Unchecked)
}

// The client also works with the token endpoint of the authenticate service's file (/realms/…, on the
// Keycloak host) when TokenURL names it.
func TestClientWithRealmTokenURL(t *testing.T) {
	sv, err := standin.New(standin.WithClient("fd", "s3cret"))
	require.NoError(t, err)
	srv := httptest.NewServer(sv)
	defer srv.Close()
	c, err := vzd.New(vzd.Config{BaseURL: srv.URL, TokenURL: srv.URL + standin.RealmTokenPath, ClientID: "fd", ClientSecret: "s3cret", MaxAttempts: 1})
	require.NoError(t, err)
	_, err = c.FederationCheck(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, sv.Stats().OAuthTokens)
}
