package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/orgcheck"
	"github.com/timfd/fachdienst/control/regtoken"
	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/userblock"
)

// The registration service's parts behind the portal: the RegService token signer (I_requestToken),
// the user blocker (A_23613) and the organisation check (A_23092–A_23094).

// newTokenIssuer opens the C.FD.SIG key and certificate; nil without regtoken.key_file.
func newTokenIssuer(cfg config.RegToken) (*regtoken.Signer, error) {
	if cfg.KeyFile == "" {
		return nil, nil
	}
	return regtoken.Open(regtoken.Files{Alg: cfg.Alg, KeyFile: cfg.KeyFile, CertFile: cfg.CertFile,
		Issuer: cfg.Issuer, Audience: cfg.Audience, Lifetime: cfg.Lifetime})
}

// userBlockToken is the homeserver admin's access token for blocking: user_block.admin_token, else
// homeserver.admin_token when that is an admin's token (an application service's as_token is none).
func userBlockToken(cfg config.Config) string {
	if cfg.UserBlock.AdminToken != "" {
		return cfg.UserBlock.AdminToken
	}
	if cfg.Homeserver.AccountDataAPI == "synapse-admin" {
		return cfg.Homeserver.AdminToken
	}
	return ""
}

// newUserBlocker drives the homeserver's admin API and keeps the blocked set, which every policy
// build hands to the proxies; nil without an admin token.
func (s *Server) newUserBlocker(ctx context.Context, cfg config.Config) (*userblock.Blocker, error) {
	token := userBlockToken(cfg)
	if token == "" || cfg.Homeserver.URL == "" || len(cfg.Policy.OwnDomains) == 0 {
		s.log.Warn("blocking users is not available: it needs homeserver.url, a homeserver admin token (user_block.admin_token) and policy.own_domains")
		return nil, nil
	}
	hc := &http.Client{Timeout: cfg.Homeserver.Timeout}
	var hs userblock.Homeserver
	var err error
	switch cfg.UserBlock.HomeserverKind {
	case "synapse":
		hs, err = userblock.NewSynapse(cfg.Homeserver.URL, token, hc)
	default:
		hs, err = userblock.NewDendrite(cfg.Homeserver.URL, token, hc)
	}
	if err != nil {
		return nil, err
	}
	return userblock.New(ctx, userblock.Options{
		Homeserver: hs, Store: blockStore{s.Store, s.now}, ServerNames: cfg.Policy.OwnDomains,
		// The proxies learn of the change with the next policy revision they fetch.
		OnChange: func(ctx context.Context) {
			if err := s.Reload(context.WithoutCancel(ctx)); err != nil {
				s.log.Error("policy not rebuilt after a change of the blocked users", "error", err.Error())
			}
		},
		Logger: s.log,
	})
}

// newOrgCheck builds the organisation check. Org-Admins are informed at their organisation's KIM
// address from the KIM directory; without SMTP every mail counts as failed (and is retried).
func (s *Server) newOrgCheck(cfg config.Config) (*orgcheck.Checker, error) {
	var m orgcheck.Mailer = noMail{}
	if cfg.Registration.SMTP.Host != "" {
		sender, err := newMailer(cfg.Registration.SMTP)
		if err != nil {
			return nil, err
		}
		m = sender
	}
	mailOf := map[string]string{}
	if cfg.Registration.KIM.DirectoryFile != "" {
		entries, err := readKIMDirectory(cfg.Registration.KIM.DirectoryFile)
		if err != nil {
			return nil, err
		}
		for addr, e := range entries {
			if cur, ok := mailOf[e.TelematikID]; !ok || addr < cur { // one, the same on every start
				mailOf[e.TelematikID] = addr
			}
		}
	}
	return orgcheck.New(orgcheck.Options{
		Store: orgStore{s.Store, mailOf}, Directory: s.VZD, Mailer: m,
		GracePeriod: cfg.OrgCheck.GracePeriod, Provider: cfg.Contacts.ServiceProvider, Logger: s.log,
	})
}

type noMail struct{}

func (noMail) Send(context.Context, string, string, string, map[string]string) error {
	return errors.New("no SMTP server configured (registration.smtp)")
}

// blockStore keeps userblock's set in blocked_users.
type blockStore struct {
	st  *store.Store
	now func() time.Time
}

func (b blockStore) BlockedUsers(ctx context.Context) ([]string, error) {
	return b.st.AllBlockedUsers(ctx)
}

func (b blockStore) SetBlocked(ctx context.Context, mxid string, blocked bool) error {
	return b.st.SetUserBlocked(ctx, mxid, blocked, b.now())
}

// orgStore is orgcheck's view of the registered organisations: org_admins, their active services
// and org_checks.
type orgStore struct {
	st     *store.Store
	mailOf map[string]string // Telematik-ID → KIM address
}

func (o orgStore) org(c store.OrgCheck) orgcheck.Organisation {
	return orgcheck.Organisation{TelematikID: c.TelematikID, AdminMail: o.mailOf[c.TelematikID], Domains: c.Domains,
		Status: orgcheck.Status{InactiveSince: c.InactiveSince, Notified: c.Notified, Suspended: c.Suspended, SuspendedAt: c.SuspendedAt}}
}

func (o orgStore) Organisations(ctx context.Context) ([]orgcheck.Organisation, error) {
	list, err := o.st.OrgChecks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]orgcheck.Organisation, 0, len(list))
	for _, c := range list {
		out = append(out, o.org(c))
	}
	return out, nil
}

func (o orgStore) Organisation(ctx context.Context, telematikID string) (orgcheck.Organisation, error) {
	c, err := o.st.OrgCheckByTelematikID(ctx, telematikID)
	if errors.Is(err, store.ErrNotFound) {
		return orgcheck.Organisation{}, orgcheck.ErrNotFound
	}
	if err != nil {
		return orgcheck.Organisation{}, err
	}
	return o.org(c), nil
}

func (o orgStore) SetStatus(ctx context.Context, telematikID string, st orgcheck.Status) error {
	return o.st.SetOrgCheck(ctx, store.OrgCheck{TelematikID: telematikID, InactiveSince: st.InactiveSince,
		Notified: st.Notified, Suspended: st.Suspended, SuspendedAt: st.SuspendedAt})
}

// RemoveDomain forgets a service the VZD no longer lists (deleted for inactivity or decommissioning).
func (o orgStore) RemoveDomain(ctx context.Context, telematikID, domain string) error {
	err := o.st.DeleteOrgService(ctx, telematikID, strings.ToLower(domain))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// blockSyncInterval is how often a replica re-reads the blocked set: replicas sharing a database
// serve the same policy revision at most this long after one of them changed it.
const blockSyncInterval = 10 * time.Second

// runBlockSync takes in blocks made by other replicas until ctx ends.
func (s *Server) runBlockSync(ctx context.Context) {
	every(ctx, blockSyncInterval, func() {
		if _, err := s.UserBlock.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("blocked users not re-read", "error", err.Error())
		}
	})
}
