// Package mailer sends plain-text mails over SMTP (KIM authentication mails, notices to Org-Admins).
package mailer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// Config locates the SMTP relay (for KIM: the provider's KIM client module).
type Config struct {
	Host     string
	Port     int
	From     string
	Username string // empty: no SMTP authentication
	Password string
	// TLS: "starttls" (required), "opportunistic", "tls" (implicit TLS) or "none" (loopback sinks only).
	TLS     string
	Timeout time.Duration
}

// Sender sends mails through one relay.
type Sender struct {
	cfg  Config
	opts []mail.Option
}

// New checks the configuration.
func New(cfg Config) (*Sender, error) {
	if cfg.Host == "" || cfg.From == "" {
		return nil, errors.New("mailer: host and from are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	opts := []mail.Option{mail.WithTimeout(cfg.Timeout)}
	if cfg.Port > 0 {
		opts = append(opts, mail.WithPort(cfg.Port))
	}
	switch strings.ToLower(cfg.TLS) {
	case "", "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "opportunistic":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		return nil, fmt.Errorf("mailer: tls %q: want starttls, opportunistic, tls or none", cfg.TLS)
	}
	if cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	if _, err := mail.NewClient(cfg.Host, opts...); err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	return &Sender{cfg: cfg, opts: opts}, nil
}

// Send delivers one plain-text mail with the given extra headers (e.g. X-KIM-serviceindicator).
func (s *Sender) Send(ctx context.Context, to, subject, text string, headers map[string]string) error {
	m := mail.NewMsg()
	if err := m.From(s.cfg.From); err != nil {
		return fmt.Errorf("mailer: from: %w", err)
	}
	if err := m.To(to); err != nil {
		return fmt.Errorf("mailer: recipient: %w", err)
	}
	m.Subject(subject)
	for k, v := range headers {
		if strings.ContainsAny(k+v, "\r\n") {
			return fmt.Errorf("mailer: header %q: line breaks are not allowed", k)
		}
		m.SetGenHeaderPreformatted(mail.Header(k), v)
	}
	m.SetBodyString(mail.TypeTextPlain, text)
	c, err := mail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("mailer: send: %w", err)
	}
	return nil
}
