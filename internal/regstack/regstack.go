// Package regstack starts what the registration service needs in a local run besides the control
// plane: the IDP stand-in (SMC-B sign-in by OpenID Connect), Mailpit as the KIM mail sink, and a
// KIM directory file; and it configures the control plane's registration section to use them.
package regstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/internal/mailpit"
	"github.com/timfd/fachdienst/standin/idp"
)

// Demo organisations: the IDP stand-in signs in as Praxis; the KIM directory lists Klinik.
var (
	Praxis = idp.Identity{ProfessionOID: "1.2.276.0.76.4.50", IDNummer: "1-2-LOCAL-PRAXIS", OrganizationName: "Praxis Dr. Lokal"}
	Klinik = onboarding.DirectoryEntry{TelematikID: "5-2-LOCAL-KLINIK", ProfessionOID: "1.2.276.0.76.4.53", OrgName: "Klinikum Lokal"}
)

// KIMAddress is the demo KIM address of Klinik.
const KIMAddress = "klinik@lokal.kim.telematik"

// Options place the parts.
type Options struct {
	IDPListener      net.Listener // the IDP stand-in serves here
	SMTPPort         int          // Mailpit; 0 picks a free port
	MailWebPort      int
	ControlPublicURL string // the control plane's public listener, e.g. http://127.0.0.1:8483
	// ControlInternalURL, when given, is named in the listing: orders are approved there (A_23521).
	ControlInternalURL string
	DataDir            string // the KIM directory file goes here
}

// Local is the running set.
type Local struct {
	IDPURL, MailURL string
	IDP             *idp.Server
	Mail            *mailpit.Sink // nil when the Mailpit binary is missing (then KIM is off)
	MailErr         error
	registration    config.Registration
	internalURL     string
	srv             *http.Server
}

// Start starts the IDP stand-in and, when its binary is there (make mailpit), Mailpit. The IDP
// listener belongs to the returned Local (closed by Close, or here on error).
func Start(ctx context.Context, o Options) (*Local, error) {
	if o.IDPListener == nil || o.ControlPublicURL == "" || o.DataDir == "" {
		return nil, errors.New("regstack: IDP listener, control URL and data dir are required")
	}
	base := strings.TrimRight(o.ControlPublicURL, "/")
	l := &Local{IDPURL: "http://" + o.IDPListener.Addr().String(), internalURL: strings.TrimRight(o.ControlInternalURL, "/")}
	secret := onboarding.RandomToken()
	var err error
	// BP256R1, as gematik's central IDP signs ID_TOKENs.
	if l.IDP, err = idp.New(idp.Config{Issuer: l.IDPURL, Identity: Praxis, Alg: idp.AlgBP256R1,
		Clients: []idp.Client{{ID: "tim-regservice", Secret: secret, RedirectURIs: []string{base + "/orgadmin/onboarding/oidc/callback"}}}}); err != nil {
		o.IDPListener.Close()
		return nil, err
	}
	l.srv = &http.Server{Handler: l.IDP, ReadHeaderTimeout: 10 * time.Second}
	go l.srv.Serve(o.IDPListener)

	l.registration = config.Default().Registration
	l.registration.Enabled = true
	l.registration.PublicURL = base
	l.registration.SecretKey = onboarding.RandomToken() // the local database starts empty on every run
	l.registration.OIDC.Issuer, l.registration.OIDC.ClientID, l.registration.OIDC.ClientSecret = l.IDPURL, "tim-regservice", secret

	bin, err := mailpit.Binary()
	if err == nil {
		l.Mail, err = mailpit.Start(ctx, bin, o.SMTPPort, o.MailWebPort)
	}
	if err != nil {
		l.MailErr = err
		return l, nil
	}
	l.MailURL = l.Mail.WebURL
	dir := filepath.Join(o.DataDir, "kim-directory.yaml")
	raw, _ := yaml.Marshal(map[string]onboarding.DirectoryEntry{KIMAddress: Klinik})
	if err := os.WriteFile(dir, raw, 0o600); err != nil {
		l.Close(ctx)
		return nil, fmt.Errorf("regstack: %w", err)
	}
	l.registration.KIM.Enabled, l.registration.KIM.DirectoryFile = true, dir
	l.registration.SMTP = config.SMTP{Host: l.Mail.SMTPHost, Port: l.Mail.SMTPPort, From: "registrierung@tim.localhost", TLS: "none", Timeout: 10 * time.Second}
	return l, nil
}

// Apply sets the control plane's registration section.
func (l *Local) Apply(cfg *config.Config) { cfg.Registration = l.registration }

// Endpoint is a line of the local run's listing.
type Endpoint struct {
	Name, URL string
	StandIn   bool // stands in for a system outside the provider
	Note      string
}

// Endpoints lists the portal, the IDP stand-in and the mail sink.
func (l *Local) Endpoints() []Endpoint {
	out := []Endpoint{
		{"Org-Admin portal", l.registration.PublicURL + "/orgadmin/", false, "onboard an organisation (SMC-B via IDP stand-in" + map[bool]string{true: ", or KIM: " + KIMAddress, false: ""}[l.Mail != nil] + "), TOTP, services; API /orgadmin/api/v1/openapi.yaml"},
		{"IDP stand-in", l.IDPURL, true, "signs in as " + Praxis.OrganizationName + " (" + Praxis.ProfessionOID + ")"},
	}
	if l.internalURL != "" {
		out = append(out, Endpoint{"order approval", l.internalURL + "/internal/v1/registration/services", false, "pending orders; POST .../services/<domain>/approve enters one into the VZD (shared secret, A_23521)"})
	}
	if l.Mail != nil {
		out = append(out, Endpoint{"mail sink (Mailpit)", l.Mail.WebURL, true, fmt.Sprintf("KIM mails; SMTP %s:%d", l.Mail.SMTPHost, l.Mail.SMTPPort)})
	} else {
		out = append(out, Endpoint{"mail sink (Mailpit)", "", true, "not running (" + l.MailErr.Error() + "); KIM onboarding is off"})
	}
	return out
}

// Close stops the IDP stand-in and Mailpit.
func (l *Local) Close(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	if l.Mail != nil {
		l.Mail.Stop()
	}
	return err
}
