package server

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/mailer"
	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/orgadmin"
)

// newRegistration builds the Org-Admin portal and API (registration.enabled).
func (s *Server) newRegistration(cfg config.Registration, deps Deps) (*orgadmin.Handler, error) {
	base := strings.TrimRight(cfg.PublicURL, "/")
	o := orgadmin.Options{
		Store: s.Store, Federation: s.VZD, Tokens: deps.TokenIssuer, Blocker: deps.UserBlocker,
		SecretKey: []byte(cfg.SecretKey), SessionTTL: cfg.SessionTTL, TicketTTL: cfg.TicketTTL,
		MaxFailures: cfg.MaxFailures, LockoutBase: cfg.LockoutBase, LockoutMax: cfg.LockoutMax, MaxServices: cfg.MaxServices,
		Now: s.now, Logger: s.log.With("component", "orgadmin"),
	}
	// Deps replace the built parts; a nil pointer must not become a non-nil interface.
	if o.Tokens == nil && s.Tokens != nil {
		o.Tokens = s.Tokens
	}
	if o.Blocker == nil && s.UserBlock != nil {
		o.Blocker = s.UserBlock
	}
	if s.OrgCheck != nil {
		o.Organisations = s.OrgCheck
	}
	var err error
	if cfg.OIDC.Issuer != "" {
		if o.OIDC, err = onboarding.NewOIDC(onboarding.OIDCConfig{
			Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
			RedirectURL: base + "/orgadmin/onboarding/oidc/callback", Scopes: cfg.OIDC.Scopes, ACRValues: cfg.OIDC.ACRValues,
			HTTPClient: deps.IDPHTTPClient,
		}, s.Store, s.now); err != nil {
			return nil, err
		}
	}
	if cfg.KIM.Enabled {
		entries, err := readKIMDirectory(cfg.KIM.DirectoryFile)
		if err != nil {
			return nil, err
		}
		m, err := newMailer(cfg.SMTP)
		if err != nil {
			return nil, err
		}
		if o.KIM, err = onboarding.NewKIM(onboarding.KIMConfig{LinkBase: base + "/orgadmin/onboarding/kim/", TTL: cfg.KIM.TTL, MaxAttempts: cfg.KIM.MaxAttempts},
			onboarding.NewStaticDirectory(entries), m, s.Store, s.now); err != nil {
			return nil, err
		}
	}
	return orgadmin.New(o)
}

func readKIMDirectory(file string) (map[string]onboarding.DirectoryEntry, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("server: kim directory: %w", err)
	}
	entries := map[string]onboarding.DirectoryEntry{}
	if err := yaml.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("server: kim directory %s: %w", file, err)
	}
	return entries, nil
}

func newMailer(c config.SMTP) (*mailer.Sender, error) {
	return mailer.New(mailer.Config{Host: c.Host, Port: c.Port, From: c.From, Username: c.Username,
		Password: c.Password, TLS: c.TLS, Timeout: c.Timeout})
}

// mountRegistration serves the portal and API on the public router and the operator's order
// confirmation (A_23521) on the internal one, behind its authentication.
func (s *Server) mountRegistration(public *gin.Engine, internal gin.IRoutes) {
	h := gin.WrapH(s.OrgAdmin)
	public.Any("/orgadmin", h)
	public.Any("/orgadmin/*path", h)
	internal.Any("/internal/v1/registration/*path", gin.WrapH(s.OrgAdmin.OperatorHandler()))
}

// runRegistrationPurge deletes expired sessions, sign-in requests, KIM links and tickets.
func (s *Server) runRegistrationPurge(ctx context.Context) {
	every(ctx, 10*time.Minute, func() {
		if err := s.Store.PurgeRegistration(ctx, s.now()); err != nil {
			s.log.Warn("registration purge failed", "error", err.Error())
		}
	})
}

// every calls f each interval, the first time one interval from now, until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
