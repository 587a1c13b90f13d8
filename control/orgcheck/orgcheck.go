// Package orgcheck keeps the registration service's organisations in step with the VZD-FHIR-Directory
// (gemSpec_TI-Messenger-FD A_23092–A_23094, 4.5.2):
//
//   - at least every 24 hours it asks the VZD which of the provider's domains belong to organisations that
//     are no longer active (Organization.active; checkTiMessengerDomains, GET /federationCheck — the
//     provider interface's way of reading that flag), A_23092;
//   - it informs the Org-Admin of an organisation found inactive by mail, once per period of inactivity,
//     A_23093;
//   - an organisation inactive for more than the grace period (30 days) has its domains deleted from the
//     federation (DELETE /federation/{domain}) and is suspended: Allowed refuses it until it has
//     re-authenticated with its SMC-B (Reinstate), A_23094;
//   - Decommission deletes an organisation's domains on the operator's order, for example when the
//     contract ends, and suspends it for good (4.5.2).
//
// A failed VZD check changes nothing: an organisation is neither cleared nor counted as inactive on an
// answer that did not come. Telematik-IDs and mail addresses never reach the log in clear.
package orgcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/timfd/fachdienst/control/federation"
	"github.com/timfd/fachdienst/control/redact"
	"github.com/timfd/fachdienst/control/vzd"
)

// Suspension states of an organisation.
const (
	Active         = ""               // in use
	Inactive       = "inactive"       // domains deleted after the grace period; lifted by re-authentication
	Decommissioned = "decommissioned" // domains deleted on the operator's order; never lifted here
)

// Organisation is what the check needs of a registered organisation.
type Organisation struct {
	TelematikID string
	AdminMail   string   // where the Org-Admin is informed; empty: nobody to inform
	Domains     []string // its messenger services' Matrix domains registered in the federation
	Status
}

// Status is the check's state of an organisation, kept by the Store.
type Status struct {
	InactiveSince time.Time // first check that found it inactive; zero while active
	Notified      bool      // the Org-Admin has been informed of this period of inactivity
	Suspended     string    // Active, Inactive or Decommissioned
	SuspendedAt   time.Time
}

// ErrNotFound is returned by a Store for an unknown Telematik-ID.
var ErrNotFound = errors.New("orgcheck: organisation not found")

// ErrSuspended is returned by Allowed for a suspended organisation.
var ErrSuspended = errors.New("orgcheck: organisation suspended")

// Store is the registration service's organisation storage as the check uses it.
type Store interface {
	// Organisations lists every registered organisation.
	Organisations(ctx context.Context) ([]Organisation, error)
	// Organisation returns one, or ErrNotFound.
	Organisation(ctx context.Context, telematikID string) (Organisation, error)
	// SetStatus replaces an organisation's Status.
	SetStatus(ctx context.Context, telematikID string, st Status) error
	// RemoveDomain forgets a domain of the organisation once the VZD no longer lists it.
	RemoveDomain(ctx context.Context, telematikID, domain string) error
}

// Directory is the part of the VZD client the check calls; *vzd.Client implements it.
type Directory interface {
	FederationCheck(ctx context.Context) ([]vzd.Domain, error)
	DeleteDomain(ctx context.Context, domain string) error
}

// Mailer sends a plain-text mail.
type Mailer interface {
	Send(ctx context.Context, to, subject, text string, headers map[string]string) error
}

// DefaultGracePeriod is "more than 30 calendar days" (A_23094).
const DefaultGracePeriod = 30 * 24 * time.Hour

// Options configure a Checker.
type Options struct {
	Store     Store
	Directory Directory
	Mailer    Mailer
	Clock     federation.Clock // default the wall clock
	// GracePeriod an organisation may stay inactive before its domains are deleted; default 30 days.
	GracePeriod time.Duration
	// Provider names the provider in mails.
	Provider string
	Logger   *slog.Logger
}

// Checker runs the organisation check. It is safe for concurrent use; runs do not overlap.
type Checker struct {
	o   Options
	run sync.Mutex
}

// New returns a Checker.
func New(o Options) (*Checker, error) {
	if o.Store == nil || o.Directory == nil || o.Mailer == nil {
		return nil, errors.New("orgcheck: store, directory and mailer are required")
	}
	if o.Clock == nil {
		o.Clock = federation.RealClock{}
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.Provider == "" {
		o.Provider = "Ihr TI-Messenger-Anbieter"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "orgcheck")
	return &Checker{o: o}, nil
}

// Report says what one run did, by count.
type Report struct {
	Checked     int // organisations with domains, compared with the VZD's answer
	Inactive    int // found inactive
	Notified    int // Org-Admins informed in this run
	Reactivated int // inactive before, active again
	Suspended   int // grace period over: domains deleted in this run
	Failures    int // mails or deletions that failed; retried by the next run
}

// Run checks every organisation once.
func (c *Checker) Run(ctx context.Context) (Report, error) {
	c.run.Lock()
	defer c.run.Unlock()
	var rep Report
	orgs, err := c.o.Store.Organisations(ctx)
	if err != nil {
		return rep, fmt.Errorf("orgcheck: listing organisations: %w", err)
	}
	inactive, err := c.o.Directory.FederationCheck(ctx)
	if err != nil {
		return rep, fmt.Errorf("orgcheck: VZD federation check: %w", err)
	}
	byID, byDomain := map[string]bool{}, map[string]bool{}
	for _, d := range inactive {
		byID[d.TelematikID] = true
		byDomain[strings.ToLower(d.Domain)] = true
	}
	now := c.o.Clock.Now()
	for _, org := range orgs {
		if org.Suspended != Active {
			continue
		}
		if len(org.Domains) == 0 {
			// The VZD reports organisations only through their domains.
			continue
		}
		rep.Checked++
		found := byID[org.TelematikID]
		for _, d := range org.Domains {
			found = found || byDomain[strings.ToLower(d)]
		}
		if err := c.apply(ctx, org, found, now, &rep); err != nil {
			return rep, err
		}
	}
	c.o.Logger.Info("organisation check done", "checked", rep.Checked, "inactive", rep.Inactive,
		"notified", rep.Notified, "reactivated", rep.Reactivated, "suspended", rep.Suspended, "failures", rep.Failures)
	return rep, nil
}

// apply moves one organisation's state on by one check result.
func (c *Checker) apply(ctx context.Context, org Organisation, inactive bool, now time.Time, rep *Report) error {
	st := org.Status
	if !inactive {
		if st.InactiveSince.IsZero() {
			return nil
		}
		rep.Reactivated++
		return c.o.Store.SetStatus(ctx, org.TelematikID, Status{})
	}
	rep.Inactive++
	if st.InactiveSince.IsZero() {
		st.InactiveSince = now
	}
	if !st.Notified {
		if err := c.mail(ctx, org, subjectInactive, c.inactiveText(org, st.InactiveSince)); err != nil {
			rep.Failures++
		} else {
			st.Notified = true
			rep.Notified++
		}
	}
	if now.Sub(st.InactiveSince) > c.o.GracePeriod {
		if c.deleteDomains(ctx, org) {
			st.Suspended, st.SuspendedAt = Inactive, now
			rep.Suspended++
			if err := c.mail(ctx, org, subjectSuspended, c.suspendedText(org)); err != nil {
				rep.Failures++
			}
		} else {
			rep.Failures++
		}
	}
	return c.o.Store.SetStatus(ctx, org.TelematikID, st)
}

// deleteDomains removes every domain of org from the federation and the store. A domain the VZD no
// longer knows counts as deleted. It reports whether all are gone.
func (c *Checker) deleteDomains(ctx context.Context, org Organisation) bool {
	ok := true
	for _, d := range org.Domains {
		err := c.o.Directory.DeleteDomain(ctx, d)
		if err != nil && !errors.Is(err, vzd.ErrNotFound) {
			c.o.Logger.Warn("deleting a domain from the federation failed", "org", redact.ID(org.TelematikID), "error", err.Error())
			ok = false
			continue
		}
		if err := c.o.Store.RemoveDomain(ctx, org.TelematikID, d); err != nil {
			c.o.Logger.Warn("removing a deleted domain from the store failed", "org", redact.ID(org.TelematikID), "error", err.Error())
			ok = false
		}
	}
	return ok
}

func (c *Checker) mail(ctx context.Context, org Organisation, subject, text string) error {
	if org.AdminMail == "" {
		c.o.Logger.Warn("organisation has no Org-Admin mail address", "org", redact.ID(org.TelematikID))
		return errors.New("orgcheck: no Org-Admin mail address")
	}
	if err := c.o.Mailer.Send(ctx, org.AdminMail, subject, text, nil); err != nil {
		c.o.Logger.Warn("mail to the Org-Admin failed", "org", redact.ID(org.TelematikID), "error", err.Error())
		return err
	}
	return nil
}

// Decommission deletes every domain of the organisation from the federation and suspends it for good
// (controlled decommissioning, 4.5.2). It can be repeated until it reports no error: domains already
// deleted are skipped.
func (c *Checker) Decommission(ctx context.Context, telematikID string) error {
	c.run.Lock()
	defer c.run.Unlock()
	org, err := c.o.Store.Organisation(ctx, telematikID)
	if err != nil {
		return err
	}
	if !c.deleteDomains(ctx, org) {
		return errors.New("orgcheck: not every domain could be deleted from the federation; repeat the decommissioning")
	}
	st := org.Status
	st.Suspended, st.SuspendedAt = Decommissioned, c.o.Clock.Now()
	if err := c.o.Store.SetStatus(ctx, telematikID, st); err != nil {
		return err
	}
	c.o.Logger.Info("organisation decommissioned", "org", redact.ID(telematikID), "domains", len(org.Domains))
	_ = c.mail(ctx, org, subjectDecommissioned, c.decommissionedText(org))
	return nil
}

// Allowed tells whether the organisation may use the registration service: ErrSuspended when its
// domains were deleted for inactivity (until Reinstate) or on decommissioning.
func (c *Checker) Allowed(ctx context.Context, telematikID string) error {
	org, err := c.o.Store.Organisation(ctx, telematikID)
	if err != nil {
		return err
	}
	switch org.Suspended {
	case Active:
		return nil
	case Inactive:
		return fmt.Errorf("%w: inactive in the VZD-FHIR-Directory for more than %d days; authenticate again with the SMC-B", ErrSuspended, int(c.o.GracePeriod/(24*time.Hour)))
	default:
		return fmt.Errorf("%w: decommissioned", ErrSuspended)
	}
}

// Reinstate lifts a suspension for inactivity after the organisation has authenticated again with its
// SMC-B (the onboarding calls it). A decommissioned organisation stays suspended.
func (c *Checker) Reinstate(ctx context.Context, telematikID string) error {
	c.run.Lock()
	defer c.run.Unlock()
	org, err := c.o.Store.Organisation(ctx, telematikID)
	if err != nil {
		return err
	}
	switch org.Suspended {
	case Active:
		return nil
	case Decommissioned:
		return fmt.Errorf("%w: decommissioned organisations are not reinstated by authentication", ErrSuspended)
	}
	return c.o.Store.SetStatus(ctx, telematikID, Status{})
}

// Start runs the check at once and then every interval (at most 24 hours) until ctx ends. A failed run
// is repeated after retry (default one hour) instead of waiting a whole interval.
func (c *Checker) Start(ctx context.Context, interval, retry time.Duration) error {
	if interval <= 0 || interval > 24*time.Hour {
		return fmt.Errorf("orgcheck: interval %s: must be positive and at most 24h", interval)
	}
	if retry <= 0 || retry > interval {
		retry = min(time.Hour, interval)
	}
	go func() {
		for {
			wait := interval
			if _, err := c.Run(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.o.Logger.Warn("organisation check failed", "error", err.Error())
				wait = retry
			}
			t := c.o.Clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
	}()
	return nil
}
