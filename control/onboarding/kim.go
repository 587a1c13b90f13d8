package onboarding

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/timfd/fachdienst/control/store"
)

// DirectoryEntry is what the directory service (LDAP-VZD) holds for a KIM address.
type DirectoryEntry struct {
	TelematikID   string `yaml:"telematik_id" json:"telematik_id"`
	ProfessionOID string `yaml:"profession_oid" json:"profession_oid"`
	OrgName       string `yaml:"org_name" json:"org_name"`
}

// Directory looks KIM addresses up (gemSpec_VZD's LDAP directory in production).
type Directory interface {
	LookupKIM(ctx context.Context, address string) (DirectoryEntry, error)
}

// ErrNotInDirectory: the directory holds no entry for the KIM address.
var ErrNotInDirectory = errors.New("onboarding: the KIM address is not listed in the directory service")

// StaticDirectory is a directory held in memory (local runs and tests); keys are lower-case addresses.
type StaticDirectory struct {
	mu      sync.RWMutex
	entries map[string]DirectoryEntry
}

// NewStaticDirectory holds the given entries.
func NewStaticDirectory(entries map[string]DirectoryEntry) *StaticDirectory {
	d := &StaticDirectory{entries: map[string]DirectoryEntry{}}
	for k, v := range entries {
		d.Put(k, v)
	}
	return d
}

// Put adds or replaces an entry.
func (d *StaticDirectory) Put(address string, e DirectoryEntry) {
	d.mu.Lock()
	d.entries[strings.ToLower(address)] = e
	d.mu.Unlock()
}

// LookupKIM implements Directory.
func (d *StaticDirectory) LookupKIM(_ context.Context, address string) (DirectoryEntry, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.entries[strings.ToLower(address)]
	if !ok {
		return DirectoryEntry{}, ErrNotInDirectory
	}
	return e, nil
}

// Mailer sends one mail (control/mailer.Sender).
type Mailer interface {
	Send(ctx context.Context, to, subject, text string, headers map[string]string) error
}

// KIMServiceIndicator marks the mail as an authentication mail for KIM clients (5.1.1.2.1.2).
const KIMServiceIndicator = "Auth;Verification;V1.0"

// KIMConfig configures the KIM procedure.
type KIMConfig struct {
	// LinkBase is the URL on the registration service's FQDN the link's UUID is appended to,
	// e.g. https://reg.example.de/orgadmin/onboarding/kim/
	LinkBase    string
	TTL         time.Duration // validity of link and code
	MaxAttempts int           // code entries per link
}

// Errors of the KIM procedure, shown to the user as the reason of a refusal.
var (
	ErrKIMAddress      = errors.New("onboarding: not a valid KIM address")
	ErrLinkUnknown     = errors.New("onboarding: this link is not known")
	ErrLinkUsed        = errors.New("onboarding: this link was used already; start again")
	ErrLinkExpired     = errors.New("onboarding: this link has expired; start again")
	ErrWrongCode       = errors.New("onboarding: the code does not match the one shown when the mail was ordered")
	ErrTooManyAttempts = errors.New("onboarding: too many wrong codes for this link; start again")
	ErrMail            = errors.New("onboarding: the authentication mail could not be sent")
	ErrTooManyMails    = errors.New("onboarding: too many authentication mails are open for this organisation; use one of them or wait until they expire")
)

// MaxOpenMails bounds the authentication mails open at once per organisation, so the procedure
// cannot be used to flood a KIM mailbox.
const MaxOpenMails = 3

// KIM runs the KIM procedure.
type KIM struct {
	cfg   KIMConfig
	dir   Directory
	mail  Mailer
	store *store.Store
	now   func() time.Time
}

// NewKIM checks the configuration.
func NewKIM(cfg KIMConfig, dir Directory, m Mailer, st *store.Store, now func() time.Time) (*KIM, error) {
	if cfg.LinkBase == "" || dir == nil || m == nil {
		return nil, errors.New("onboarding: kim needs a link base, a directory and a mailer")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if now == nil {
		now = time.Now
	}
	return &KIM{cfg: cfg, dir: dir, mail: m, store: st, now: now}, nil
}

func sixDigits() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", n.Int64())
}

// Start looks the address up, checks the ProfessionOID, sends the authentication mail and returns
// the six-digit code to show on the order screen (and the link's UUID).
func (k *KIM) Start(ctx context.Context, address string) (id, code string, err error) {
	address = strings.TrimSpace(address)
	if len(address) > 254 {
		return "", "", ErrKIMAddress
	}
	a, err := mail.ParseAddress(address)
	if err != nil || a.Name != "" || a.Address != address {
		return "", "", ErrKIMAddress
	}
	e, err := k.dir.LookupKIM(ctx, address)
	if err != nil {
		return "", "", err
	}
	if _, err := CheckInstitution(e.ProfessionOID); err != nil {
		return "", "", err
	}
	if e.TelematikID == "" {
		return "", "", fmt.Errorf("%w: entry without Telematik-ID", ErrNotInDirectory)
	}
	if n, err := k.store.OpenKIMChallenges(ctx, e.TelematikID, k.now()); err != nil {
		return "", "", err
	} else if n >= MaxOpenMails {
		return "", "", ErrTooManyMails
	}
	id, code = uuid.NewString(), sixDigits()
	if err := k.store.PutKIMChallenge(ctx, store.KIMChallenge{
		ID: id, CodeHash: Hash(id, code), TelematikID: e.TelematikID, ProfessionOID: e.ProfessionOID,
		OrgName: e.OrgName, ExpiresAt: k.now().Add(k.cfg.TTL),
	}); err != nil {
		return "", "", err
	}
	link := k.cfg.LinkBase + id
	text := "Dies ist eine Authentifizierungs-Mail des TI-Messenger-Registrierungsdienstes.\n" +
		"This is an authentication mail of the TI-Messenger registration service.\n\n" +
		"Organisation: " + e.OrgName + "\n\n" +
		"Öffnen Sie den folgenden Link und geben Sie den sechsstelligen Code ein, der Ihnen bei der Bestellung angezeigt wurde.\n" +
		"Open the following link and enter the six-digit code that was shown to you when you ordered:\n\n" +
		link + "\n\n" +
		"Der Link ist " + k.cfg.TTL.String() + " gültig und nur einmal verwendbar. / The link is valid for " + k.cfg.TTL.String() + " and can be used once.\n" +
		"Wenn Sie keine Registrierung begonnen haben, ignorieren Sie diese Mail. / If you did not start a registration, ignore this mail.\n"
	if err := k.mail.Send(ctx, address, "TI-Messenger: Authentifizierung / Authentication", text,
		map[string]string{"X-KIM-serviceindicator": KIMServiceIndicator}); err != nil {
		k.store.UseKIMChallenge(ctx, id) // never delivered: neither usable nor counted as open
		return "", "", fmt.Errorf("%w: %v", ErrMail, err)
	}
	return id, code, nil
}

// Check reports whether id names a usable link, without taking an attempt (the page that asks for
// the code uses it).
func (k *KIM) Check(ctx context.Context, id string) error {
	_, err := k.usable(ctx, id)
	return err
}

func (k *KIM) usable(ctx context.Context, id string) (store.KIMChallenge, error) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return store.KIMChallenge{}, ErrLinkUnknown
	}
	c, err := k.store.GetKIMChallenge(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c, ErrLinkUnknown
	case err != nil:
		return c, err
	case c.Used:
		return c, ErrLinkUsed
	case !c.ExpiresAt.After(k.now()):
		return c, ErrLinkExpired
	case c.Attempts >= k.cfg.MaxAttempts:
		return c, ErrTooManyAttempts
	}
	return c, nil
}

// Verify completes the procedure: the link (id) must be known, unused and unexpired, and code the
// one shown at Start. Each call takes one of MaxAttempts; success uses the link up.
func (k *KIM) Verify(ctx context.Context, id, code string) (Identity, error) {
	c, err := k.usable(ctx, id)
	if err != nil {
		return Identity{}, err
	}
	if err := k.store.CountKIMAttempt(ctx, id, k.cfg.MaxAttempts); errors.Is(err, store.ErrLimit) {
		return Identity{}, ErrTooManyAttempts
	} else if err != nil {
		return Identity{}, err
	}
	code = strings.TrimSpace(code)
	if subtle.ConstantTimeCompare([]byte(Hash(id, code)), []byte(c.CodeHash)) != 1 {
		return Identity{}, ErrWrongCode
	}
	if err := k.store.UseKIMChallenge(ctx, id); errors.Is(err, store.ErrUsed) {
		return Identity{}, ErrLinkUsed
	} else if err != nil {
		return Identity{}, err
	}
	return Identity{TelematikID: c.TelematikID, ProfessionOID: c.ProfessionOID, OrgName: c.OrgName, Method: "kim"}, nil
}
