package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/control/config"
)

// With registration enabled the portal is on the public listener and the operator's order
// confirmation only on the internal one, behind its shared secret.
func TestRegistrationMounted(t *testing.T) {
	issuer := startIDP(t)

	e := setup(t, func(c *config.Config) {
		c.Registration.Enabled = true
		c.Registration.PublicURL = "https://reg.example"
		c.Registration.SecretKey = "server-test-secret-key-0123456789abcdef"
		c.Registration.OIDC = config.RegistrationOIDC{Issuer: issuer, ClientID: "reg", ClientSecret: "s"}
	})
	resp, err := http.Get(e.public + "/orgadmin/")
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("portal: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if resp, err := http.Get(e.public + "/orgadmin"); err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/orgadmin/" {
		t.Fatalf("/orgadmin: %v %v", resp, err)
	}
	if resp, _ := http.Post(e.public+"/orgadmin/api/v1/login", "application/json", strings.NewReader(`{"username":"x","password":"y","totp_code":"123456"}`)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API login with unknown user: %d", resp.StatusCode)
	}
	if resp, _ := http.Post(e.public+"/orgadmin/onboarding/oidc", "application/x-www-form-urlencoded", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("form without CSRF token: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		base, auth string
		status     int
	}{
		{e.internal, "", http.StatusUnauthorized},
		{e.internal, "Bearer " + secret, http.StatusOK},
		{e.public, "Bearer " + secret, http.StatusNotFound},
	} {
		req, _ := http.NewRequest("GET", c.base+"/internal/v1/registration/services", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != c.status {
			t.Fatalf("operator list at %s (%q): %v %v, want %d", c.base, c.auth, resp.StatusCode, err, c.status)
		}
		resp.Body.Close()
	}
}
