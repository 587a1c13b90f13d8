// Package config reads the push gateway's YAML configuration (modelled on
// Sygnal's `apps:` section) and builds the providers it names.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/timfd/fachdienst/pushgw/apns"
	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/fcm"
	"github.com/timfd/fachdienst/pushgw/push"
	"github.com/timfd/fachdienst/pushgw/webpush"
)

// MaxDelayLimit is the largest random delay A_22808 allows.
const MaxDelayLimit = 10 * time.Second

// Config is the whole file.
type Config struct {
	Listen        string         `yaml:"listen" json:"listen"`
	LogLevel      string         `yaml:"log_level" json:"log_level"`
	MaxDelay      *time.Duration `yaml:"max_delay" json:"max_delay"`
	ShutdownGrace time.Duration  `yaml:"shutdown_grace" json:"shutdown_grace"`
	Queue         Queue          `yaml:"queue" json:"queue"`
	Rejected      Rejected       `yaml:"rejected" json:"rejected"`
	Apps          map[string]App `yaml:"apps" json:"apps"`

	dir string // relative file names are resolved against the config file's folder
}

// Queue tunes delivery.
type Queue struct {
	Capacity    int           `yaml:"capacity" json:"capacity"`
	MaxAttempts int           `yaml:"max_attempts" json:"max_attempts"`
	Backoff     time.Duration `yaml:"backoff" json:"backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff" json:"max_backoff"`
	SendTimeout time.Duration `yaml:"send_timeout" json:"send_timeout"`
	Spool       string        `yaml:"spool" json:"spool"`
}

// Rejected bounds the memory of rejected pushkeys.
type Rejected struct {
	Capacity int           `yaml:"capacity" json:"capacity"`
	TTL      time.Duration `yaml:"ttl" json:"ttl"`
}

// App is one app id.
type App struct {
	Type        string `yaml:"type" json:"type"` // apns, fcm, webpush
	Concurrency int    `yaml:"concurrency" json:"concurrency"`
	Endpoint    string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	CAFile      string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"` // extra trusted roots (tests, private relays)

	// APNs
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	KeyID    string `yaml:"key_id,omitempty" json:"key_id,omitempty"`
	TeamID   string `yaml:"team_id,omitempty" json:"team_id,omitempty"`
	Topic    string `yaml:"topic,omitempty" json:"topic,omitempty"`
	Platform string `yaml:"platform,omitempty" json:"platform,omitempty"` // production or sandbox
	LocKey   string `yaml:"loc_key,omitempty" json:"loc_key,omitempty"`

	// FCM
	ServiceAccountFile string `yaml:"service_account_file,omitempty" json:"service_account_file,omitempty"`
	ProjectID          string `yaml:"project_id,omitempty" json:"project_id,omitempty"`

	// Web Push
	VAPIDPublicKey      string   `yaml:"vapid_public_key,omitempty" json:"vapid_public_key,omitempty"`
	VAPIDPrivateKeyFile string   `yaml:"vapid_private_key_file,omitempty" json:"vapid_private_key_file,omitempty"`
	Subscriber          string   `yaml:"subscriber,omitempty" json:"subscriber,omitempty"`
	TTL                 int      `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	AllowedEndpoints    []string `yaml:"allowed_endpoints,omitempty" json:"allowed_endpoints,omitempty"`
}

// Load reads and checks a configuration file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	return c, nil
}

// Parse decodes YAML strictly (unknown keys are errors), applies defaults and
// validates.
func Parse(raw []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	c.defaults()
	return &c, c.validate()
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = ":8090"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.MaxDelay == nil {
		d := MaxDelayLimit
		c.MaxDelay = &d
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 20 * time.Second
	}
	q := &c.Queue
	q.Capacity = orInt(q.Capacity, 10000)
	q.MaxAttempts = orInt(q.MaxAttempts, 5)
	q.Backoff = orDur(q.Backoff, time.Second)
	q.MaxBackoff = orDur(q.MaxBackoff, time.Minute)
	q.SendTimeout = orDur(q.SendTimeout, 30*time.Second)
	c.Rejected.Capacity = orInt(c.Rejected.Capacity, 100000)
	c.Rejected.TTL = orDur(c.Rejected.TTL, 24*time.Hour)
	for id, a := range c.Apps {
		a.Concurrency = orInt(a.Concurrency, 8)
		if a.Type == "apns" && a.Platform == "" {
			a.Platform = "production"
		}
		c.Apps[id] = a
	}
}

func (c *Config) validate() error {
	var errs []error
	if *c.MaxDelay < 0 || *c.MaxDelay > MaxDelayLimit {
		errs = append(errs, fmt.Errorf("max_delay must be between 0s and %s", MaxDelayLimit))
	}
	if c.Queue.Capacity < 1 || c.Queue.Capacity > 10_000_000 {
		errs = append(errs, errors.New("queue.capacity must be between 1 and 10000000"))
	}
	if c.Rejected.Capacity < 1 || c.Rejected.Capacity > 10_000_000 {
		errs = append(errs, errors.New("rejected.capacity must be between 1 and 10000000"))
	}
	if len(c.Apps) == 0 {
		errs = append(errs, errors.New("apps: at least one app id is required"))
	}
	for _, id := range c.AppIDs() {
		a := c.Apps[id]
		if len(id) > 64 {
			errs = append(errs, fmt.Errorf("apps.%s: app id longer than 64 bytes", id))
		}
		if a.Concurrency < 1 || a.Concurrency > 1024 {
			errs = append(errs, fmt.Errorf("apps.%s: concurrency must be between 1 and 1024", id))
		}
		var missing []string
		need := func(name, v string) {
			if v == "" {
				missing = append(missing, name)
			}
		}
		switch a.Type {
		case "apns":
			need("key_file", a.KeyFile)
			need("key_id", a.KeyID)
			need("team_id", a.TeamID)
			need("topic", a.Topic)
			if a.Platform != "production" && a.Platform != "sandbox" {
				errs = append(errs, fmt.Errorf("apps.%s: platform must be production or sandbox", id))
			}
		case "fcm":
			need("service_account_file", a.ServiceAccountFile)
		case "webpush":
			need("vapid_public_key", a.VAPIDPublicKey)
			need("vapid_private_key_file", a.VAPIDPrivateKeyFile)
			need("subscriber", a.Subscriber)
		default:
			errs = append(errs, fmt.Errorf("apps.%s: type must be apns, fcm or webpush", id))
		}
		for _, m := range missing {
			errs = append(errs, fmt.Errorf("apps.%s: %s is required", id, m))
		}
	}
	return errors.Join(errs...)
}

// AppIDs lists the configured app ids in order.
func (c *Config) AppIDs() []string {
	ids := make([]string, 0, len(c.Apps))
	for id := range c.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// DelayBound is the random delay's upper bound as delivery.Options expects it
// (negative: no delay).
func (c *Config) DelayBound() time.Duration {
	if *c.MaxDelay == 0 {
		return -1
	}
	return *c.MaxDelay
}

// Options are the delivery options of this configuration.
func (c *Config) Options() delivery.Options {
	return delivery.Options{
		Capacity:       c.Queue.Capacity,
		MaxDelay:       c.DelayBound(),
		MaxAttempts:    c.Queue.MaxAttempts,
		Backoff:        c.Queue.Backoff,
		MaxBackoff:     c.Queue.MaxBackoff,
		SendTimeout:    c.Queue.SendTimeout,
		RejectCapacity: c.Rejected.Capacity,
		RejectTTL:      c.Rejected.TTL,
		SpoolPath:      c.path(c.Queue.Spool),
	}
}

// BuildApps reads key files and builds each app's provider.
func (c *Config) BuildApps() ([]delivery.App, error) {
	var apps []delivery.App
	for _, id := range c.AppIDs() {
		a := c.Apps[id]
		s, err := c.build(a)
		if err != nil {
			return nil, fmt.Errorf("apps.%s: %w", id, err)
		}
		apps = append(apps, delivery.App{ID: id, Sender: s, Concurrency: a.Concurrency})
	}
	return apps, nil
}

func (c *Config) build(a App) (push.Sender, error) {
	var ca []byte
	if a.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(c.path(a.CAFile)); err != nil {
			return nil, err
		}
	}
	roots, err := push.CertPool(ca)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	client := push.HTTPClient(roots, c.Queue.SendTimeout)
	switch a.Type {
	case "apns":
		key, err := os.ReadFile(c.path(a.KeyFile))
		if err != nil {
			return nil, err
		}
		endpoint := a.Endpoint
		if endpoint == "" {
			endpoint = apns.Production
			if a.Platform == "sandbox" {
				endpoint = apns.Sandbox
			}
		}
		return apns.New(apns.Config{KeyP8: key, KeyID: a.KeyID, TeamID: a.TeamID, Topic: a.Topic, Endpoint: endpoint, LocKey: a.LocKey, Client: client})
	case "fcm":
		sa, err := os.ReadFile(c.path(a.ServiceAccountFile))
		if err != nil {
			return nil, err
		}
		return fcm.New(fcm.Config{ServiceAccountJSON: sa, ProjectID: a.ProjectID, Endpoint: a.Endpoint, Client: client})
	case "webpush":
		priv, err := os.ReadFile(c.path(a.VAPIDPrivateKeyFile))
		if err != nil {
			return nil, err
		}
		return webpush.New(webpush.Config{
			VAPIDPublicKey: a.VAPIDPublicKey, VAPIDPrivateKey: string(bytes.TrimSpace(priv)),
			Subscriber: a.Subscriber, TTL: a.TTL, AllowedEndpoints: a.AllowedEndpoints, Client: client,
		})
	}
	return nil, fmt.Errorf("unknown type %q", a.Type)
}

func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func orDur(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}
