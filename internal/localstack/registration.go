package localstack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/internal/regstack"
)

// adminLocalpart is the homeserver admin account whose access token the control plane blocks users
// with (Dendrite's admin API).
const adminLocalpart = "tim-admin"

// AdminToken registers (once per data folder) the homeserver admin account the control plane uses
// for its admin API and returns a fresh access token of it. Its password is derived from the
// registration shared secret, so a later run on the same data folder logs in again.
func (d *Dendrite) AdminToken(ctx context.Context) (string, error) {
	m := hmac.New(sha256.New, []byte(d.sharedSecret))
	m.Write([]byte("tim-admin-password"))
	password := hex.EncodeToString(m.Sum(nil))
	if _, err := d.Register(ctx, adminLocalpart, password, true); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]any{
		"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": adminLocalpart}, "password": password,
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.URL+"/_matrix/client/v3/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := probeClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("dendrite: admin login: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.AccessToken == "" {
		return "", fmt.Errorf("dendrite: admin login: HTTP %d", resp.StatusCode)
	}
	return out.AccessToken, nil
}

// startRegistration starts the registration service's stand-ins (IDP, Mailpit) and sets the
// control plane's registration section: the portal on the public listener, RegService tokens signed
// with a throw-away C.FD.SIG in the data folder, and blocking users through the homeserver's admin
// API (Dendrite only: the homeserver stand-in has none).
func (s *Stack) startRegistration(ctx context.Context, cfg *config.Config, listen func(int) (net.Listener, string, error), pubURL, intURL string) error {
	o := s.opts
	idpLn, _, err := listen(offIDP)
	if err != nil {
		return err
	}
	smtpPort, mailWebPort := 0, 0
	if o.BasePort != 0 {
		smtpPort, mailWebPort = o.BasePort+offMailSMTP, o.BasePort+offMailWeb
	}
	if s.Registration, err = regstack.Start(ctx, regstack.Options{IDPListener: idpLn, SMTPPort: smtpPort, MailWebPort: mailWebPort,
		ControlPublicURL: pubURL, ControlInternalURL: intURL, DataDir: o.DataDir}); err != nil {
		return fmt.Errorf("localstack: registration: %w", err)
	}
	s.Registration.Apply(cfg)
	// The operator's approval (A_23521) needs the internal secret; a local operator reads it here.
	if err := os.WriteFile(s.internalSecretFile(), []byte(s.InternalSecret+"\n"), 0o600); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	key, cert, err := regstack.LocalSigner(filepath.Join(o.DataDir, "regtoken"))
	if err != nil {
		return err
	}
	cfg.RegToken.KeyFile, cfg.RegToken.CertFile = key, cert
	cfg.RegToken.Issuer = pubURL + "/orgadmin/api/v1/token"
	cfg.RegToken.Audience = s.VZDURL + "/owner-authenticate"
	if s.Dendrite != nil {
		tok, err := s.Dendrite.AdminToken(ctx)
		if err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
		cfg.UserBlock.HomeserverKind, cfg.UserBlock.AdminToken = "dendrite", tok
	} else {
		// The stand-in takes Synapse's admin token but serves no admin route that blocks: blocking
		// answers 502 there, while the proxies still receive the blocked set.
		cfg.UserBlock.HomeserverKind = "synapse"
	}
	return nil
}

func (s *Stack) internalSecretFile() string { return filepath.Join(s.opts.DataDir, "internal-secret") }

// registrationEndpoints lists the portal, the stand-ins and the signer.
func (s *Stack) registrationEndpoints() []Endpoint {
	var out []Endpoint
	for _, ep := range s.Registration.Endpoints() {
		if ep.Name == "order approval" {
			ep.Note += "; the secret is in " + s.internalSecretFile()
		}
		out = append(out, Endpoint{ep.Name, ep.URL, ep.StandIn, ep.Note})
	}
	out = append(out, Endpoint{"RegService token signer", "", true,
		"throw-away C.FD.SIG (BP256R1, test CA) in " + filepath.Join(s.opts.DataDir, "regtoken")})
	return out
}
