// Package config holds the control plane's configuration: a YAML file plus TIM_CONTROL_* environment
// overrides.
//
// Every field has a default, so an empty file (or none) gives a working local setup on SQLite. An
// environment variable overrides one field; its name is TIM_CONTROL_ followed by the YAML path in
// upper case joined by underscores, for example TIM_CONTROL_STORAGE_POSTGRES_DSN or
// TIM_CONTROL_INVITE_CACHE_TTL. Secrets therefore never have to be written into the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "TIM_CONTROL_"

// Config is the whole configuration of tim-control.
type Config struct {
	Public     Public     `yaml:"public" json:"public"`
	Internal   Internal   `yaml:"internal" json:"internal"`
	Storage    Storage    `yaml:"storage" json:"storage"`
	Homeserver Homeserver `yaml:"homeserver" json:"homeserver"`
	Contacts   Contacts   `yaml:"contacts" json:"contacts"`
	Invite     Invite     `yaml:"invite" json:"invite"`
	VZD        VZD        `yaml:"vzd" json:"vzd"`
	Federation Federation `yaml:"federation" json:"federation"`
	Policy     Policy     `yaml:"policy" json:"policy"`
	Log        Log        `yaml:"log" json:"log"`
	RegToken   RegToken   `yaml:"regtoken" json:"regtoken"`
	OrgCheck   OrgCheck   `yaml:"orgcheck" json:"orgcheck"`
	UserBlock  UserBlock  `yaml:"user_block" json:"user_block"`
	// Registration is the registration service's front end for organisations (Org-Admin portal
	// and API under /orgadmin/ on the public listener).
	Registration Registration `yaml:"registration" json:"registration"`
}

// Registration configures onboarding, Org-Admin accounts and messenger-service orders.
type Registration struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// PublicURL is the registration service's address on its FQDN as users reach it, e.g.
	// https://reg.provider.example; KIM links and the OIDC redirect URL are made from it.
	PublicURL string `yaml:"public_url" json:"public_url"`
	// SecretKey (at least 32 bytes) keys the CSRF tokens of visitors without a session and
	// encrypts the Org-Admins' TOTP secrets at rest; replicas need the same one. Prefer
	// TIM_CONTROL_REGISTRATION_SECRET_KEY to writing it into the file.
	SecretKey   string           `yaml:"secret_key" json:"secret_key"`
	SessionTTL  time.Duration    `yaml:"session_ttl" json:"session_ttl"`
	TicketTTL   time.Duration    `yaml:"ticket_ttl" json:"ticket_ttl"`
	MaxFailures int              `yaml:"max_failures" json:"max_failures"`
	LockoutBase time.Duration    `yaml:"lockout_base" json:"lockout_base"`
	LockoutMax  time.Duration    `yaml:"lockout_max" json:"lockout_max"`
	MaxServices int              `yaml:"max_services" json:"max_services"`
	OIDC        RegistrationOIDC `yaml:"oidc" json:"oidc"`
	KIM         RegistrationKIM  `yaml:"kim" json:"kim"`
	SMTP        SMTP             `yaml:"smtp" json:"smtp"`
}

// RegistrationOIDC registers the registration service at the central IDP (gemSpec_IDP_FD). An
// empty Issuer switches SMC-B onboarding by OpenID Connect off.
type RegistrationOIDC struct {
	Issuer       string   `yaml:"issuer" json:"issuer"`
	ClientID     string   `yaml:"client_id" json:"client_id"`
	ClientSecret string   `yaml:"client_secret" json:"client_secret"`
	Scopes       []string `yaml:"scopes" json:"scopes"`
	ACRValues    []string `yaml:"acr_values" json:"acr_values"`
}

// RegistrationKIM configures onboarding by KIM mail.
type RegistrationKIM struct {
	Enabled     bool          `yaml:"enabled" json:"enabled"`
	TTL         time.Duration `yaml:"ttl" json:"ttl"`
	MaxAttempts int           `yaml:"max_attempts" json:"max_attempts"`
	// DirectoryFile holds the directory entries (KIM address → telematik_id, profession_oid,
	// org_name) as YAML, standing in for the LDAP directory service.
	DirectoryFile string `yaml:"directory_file" json:"directory_file"`
}

// SMTP is the relay mails leave by (for KIM: the provider's KIM client module).
type SMTP struct {
	Host     string        `yaml:"host" json:"host"`
	Port     int           `yaml:"port" json:"port"`
	From     string        `yaml:"from" json:"from"`
	Username string        `yaml:"username" json:"username"`
	Password string        `yaml:"password" json:"password"`
	TLS      string        `yaml:"tls" json:"tls"`
	Timeout  time.Duration `yaml:"timeout" json:"timeout"`
}

// Public is the listener for the contact management API, health and metrics.
type Public struct {
	Listen          string        `yaml:"listen" json:"listen"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes" json:"max_body_bytes"`
}

// Internal is the listener of the internal API for the messenger proxies (/internal/v1/*).
// An empty Listen serves the internal API on the public listener; it stays authenticated there.
type Internal struct {
	Listen string `yaml:"listen" json:"listen"`
	// SharedSecrets are the bearer secrets the proxies may present (several at once for rotation;
	// each at least 16 bytes).
	SharedSecrets []string `yaml:"shared_secrets" json:"shared_secrets"`
}

// Storage selects the database: PostgreSQL when PostgresDSN is set, embedded SQLite otherwise.
type Storage struct {
	PostgresDSN string `yaml:"postgres_dsn" json:"postgres_dsn"`
	SQLitePath  string `yaml:"sqlite_path" json:"sqlite_path"`
}

// Homeserver is the provider's Matrix homeserver, asked to resolve Matrix OpenID tokens and, in
// TI-M Pro mode, for the invitee's permission configuration (account data).
type Homeserver struct {
	URL            string        `yaml:"url" json:"url"`
	Timeout        time.Duration `yaml:"timeout" json:"timeout"`
	TokenCacheSize int           `yaml:"token_cache_size" json:"token_cache_size"`
	TokenCacheTTL  time.Duration `yaml:"token_cache_ttl" json:"token_cache_ttl"`
	AdminToken     string        `yaml:"admin_token" json:"admin_token"`
	// AccountDataAPI is how the permission configuration is read with AdminToken: "synapse-admin"
	// (Synapse's admin API, AdminToken an admin's access token) or "appservice" (the client-server
	// account data API, AdminToken an application service's as_token; Dendrite and Synapse).
	AccountDataAPI string `yaml:"account_data_api" json:"account_data_api"`
}

// Contacts configures the release lists (I_TiMessengerContactManagement).
type Contacts struct {
	PurgeInterval   time.Duration `yaml:"purge_interval" json:"purge_interval"`
	MaxPerOwner     int           `yaml:"max_per_owner" json:"max_per_owner"`
	ServiceContact  string        `yaml:"service_contact" json:"service_contact"`
	ServiceProvider string        `yaml:"service_provider" json:"service_provider"`
}

// Invite configures invite-permission decisions (stages 2 and 3). Whether the invitee's permission
// configuration (TI-M Pro / ePA account data) takes part follows the policy variant; it is read
// when homeserver.admin_token is set.
type Invite struct {
	CacheSize int           `yaml:"cache_size" json:"cache_size"`
	CacheTTL  time.Duration `yaml:"cache_ttl" json:"cache_ttl"`
	Timeout   time.Duration `yaml:"timeout" json:"timeout"`
}

// VZD is the VZD-FHIR-Directory (I_VZD_TIM_Provider_Services) with its OAuth2 client credentials.
// BaseURL alone suffices when the VZD serves token, authenticate and services endpoints on one host.
type VZD struct {
	BaseURL         string        `yaml:"base_url" json:"base_url"`
	TokenURL        string        `yaml:"token_url" json:"token_url"`
	AuthenticateURL string        `yaml:"authenticate_url" json:"authenticate_url"`
	ServicesURL     string        `yaml:"services_url" json:"services_url"`
	ClientID        string        `yaml:"client_id" json:"client_id"`
	ClientSecret    string        `yaml:"client_secret" json:"client_secret"`
	Timeout         time.Duration `yaml:"timeout" json:"timeout"`
	SigAlg          string        `yaml:"sig_alg" json:"sig_alg"`
	// RootCAFile, when set, holds the PEM CAs trusted for TLS to the VZD instead of the system roots.
	RootCAFile string `yaml:"root_ca_file" json:"root_ca_file"`
}

// Federation configures how the federation list is kept.
type Federation struct {
	RefreshInterval time.Duration `yaml:"refresh_interval" json:"refresh_interval"`
	MaxAge          time.Duration `yaml:"max_age" json:"max_age"`
	// TrustAnchorFile holds the PEM certificates the list's x5c chain must lead to.
	TrustAnchorFile string `yaml:"trust_anchor_file" json:"trust_anchor_file"`
	// IncidentWebhook receives a JSON POST when the VZD stays unreachable (e.g. an ITSM intake).
	IncidentWebhook string `yaml:"incident_webhook" json:"incident_webhook"`
}

// Policy locates the Rego sources and the provider's policy data. An empty Dir uses the policies
// built into the binary. The remaining fields are merged into the data document's "config".
type Policy struct {
	Dir string `yaml:"dir" json:"dir"` // an OPA bundle directory (.manifest, *.rego, data.json)
	// Bundle is an OPA bundle file (`opa build`), read instead of Dir.
	Bundle   string `yaml:"bundle" json:"bundle"`
	DataFile string `yaml:"data_file" json:"data_file"`
	// Watch reloads when a file of Dir, Bundle or DataFile changes (besides SIGHUP and the admin API).
	Watch             bool     `yaml:"watch" json:"watch"`
	Variant           string   `yaml:"variant" json:"variant"`
	OwnDomains        []string `yaml:"own_domains" json:"own_domains"`
	ApprovedClientIDs []string `yaml:"approved_client_ids" json:"approved_client_ids"`
}

// Log configures the JSON logger.
type Log struct {
	Level string `yaml:"level" json:"level"`
}

// RegToken configures the RegService OpenID token (I_requestToken), signed with the key of C.FD.SIG.
// Without KeyFile no token is issued.
type RegToken struct {
	Alg      string        `yaml:"alg" json:"alg"`             // BP256R1 or ES256
	KeyFile  string        `yaml:"key_file" json:"key_file"`   // PEM private key of C.FD.SIG
	CertFile string        `yaml:"cert_file" json:"cert_file"` // PEM certificate C.FD.SIG (x5c)
	Issuer   string        `yaml:"issuer" json:"issuer"`       // URL of the endpoint issuing the token (iss)
	Audience string        `yaml:"audience" json:"audience"`   // owner-authenticate URL of the VZD-FHIR-Directory (aud)
	Lifetime time.Duration `yaml:"lifetime" json:"lifetime"`   // at most 1h
}

// OrgCheck configures the check of registered organisations in the VZD (A_23092–A_23094).
type OrgCheck struct {
	Interval    time.Duration `yaml:"interval" json:"interval"`         // at most 24h
	GracePeriod time.Duration `yaml:"grace_period" json:"grace_period"` // inactive this long: domains deleted
}

// UserBlock names the homeserver whose admin API blocks users (A_23613): synapse or dendrite. AdminToken
// is an access token of a homeserver admin; empty takes homeserver.admin_token when that is one
// (account_data_api synapse-admin). Without a token the portal answers 503 for blocking.
type UserBlock struct {
	HomeserverKind string `yaml:"homeserver_kind" json:"homeserver_kind"`
	AdminToken     string `yaml:"admin_token" json:"admin_token"`
}

// Default returns the configuration used for every field the file and environment leave unset.
func Default() Config {
	return Config{
		Public:     Public{Listen: "127.0.0.1:8090", ShutdownTimeout: 15 * time.Second, MaxBodyBytes: 64 << 10},
		Internal:   Internal{Listen: "127.0.0.1:8091"},
		Storage:    Storage{SQLitePath: "tim-control.db"},
		Homeserver: Homeserver{URL: "http://127.0.0.1:8008", Timeout: 5 * time.Second, TokenCacheSize: 10000, TokenCacheTTL: time.Minute, AccountDataAPI: "synapse-admin"},
		Contacts:   Contacts{PurgeInterval: 10 * time.Minute, MaxPerOwner: 1000},
		Invite:     Invite{CacheSize: 100000, CacheTTL: 10 * time.Minute, Timeout: 3 * time.Second},
		VZD:        VZD{Timeout: 10 * time.Second, SigAlg: "BP256R1"},
		Federation: Federation{RefreshInterval: time.Hour, MaxAge: 72 * time.Hour},
		Policy:     Policy{Watch: true},
		Log:        Log{Level: "info"},
		RegToken:   RegToken{Alg: "BP256R1", Lifetime: time.Hour},
		OrgCheck:   OrgCheck{Interval: 24 * time.Hour, GracePeriod: 30 * 24 * time.Hour},
		UserBlock:  UserBlock{HomeserverKind: "dendrite"},
		Registration: Registration{
			SessionTTL: 30 * time.Minute, TicketTTL: 30 * time.Minute, MaxFailures: 5, LockoutBase: time.Minute, LockoutMax: time.Hour,
			MaxServices: 20, OIDC: RegistrationOIDC{ACRValues: []string{"gematik-ehealth-loa-high"}},
			KIM: RegistrationKIM{TTL: 30 * time.Minute, MaxAttempts: 5}, SMTP: SMTP{Port: 587, TLS: "starttls", Timeout: 15 * time.Second},
		},
	}
}

// Load reads the YAML file at path (none when path is empty), applies the environment overrides
// from environ (os.Environ() form) and validates the result.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)                                               // a misspelt key must not silently fall back to a default
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
			return Config{}, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first field whose value cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Public.Listen == "" {
		errs = append(errs, errors.New("public.listen is required"))
	}
	if c.Storage.PostgresDSN == "" && c.Storage.SQLitePath == "" {
		errs = append(errs, errors.New("storage: either postgres_dsn or sqlite_path is required"))
	}
	if u, err := url.Parse(c.Homeserver.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("homeserver.url %q is not an http(s) URL", c.Homeserver.URL))
	}
	if a := c.Homeserver.AccountDataAPI; a != "synapse-admin" && a != "appservice" {
		errs = append(errs, fmt.Errorf("homeserver.account_data_api %q is neither synapse-admin nor appservice", a))
	}
	if c.VZD.BaseURL != "" {
		if u, err := url.Parse(c.VZD.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("vzd.base_url %q is not an http(s) URL", c.VZD.BaseURL))
		}
	}
	positive := map[string]int64{
		"public.max_body_bytes":       c.Public.MaxBodyBytes,
		"homeserver.token_cache_size": int64(c.Homeserver.TokenCacheSize),
		"contacts.max_per_owner":      int64(c.Contacts.MaxPerOwner),
		"invite.cache_size":           int64(c.Invite.CacheSize),
	}
	durations := map[string]time.Duration{
		"public.shutdown_timeout":     c.Public.ShutdownTimeout,
		"homeserver.timeout":          c.Homeserver.Timeout,
		"homeserver.token_cache_ttl":  c.Homeserver.TokenCacheTTL,
		"contacts.purge_interval":     c.Contacts.PurgeInterval,
		"invite.cache_ttl":            c.Invite.CacheTTL,
		"invite.timeout":              c.Invite.Timeout,
		"vzd.timeout":                 c.VZD.Timeout,
		"federation.refresh_interval": c.Federation.RefreshInterval,
		"federation.max_age":          c.Federation.MaxAge,
	}
	for _, k := range sortedKeys(positive) {
		if positive[k] <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", k))
		}
	}
	for _, k := range sortedKeys(durations) {
		if durations[k] <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", k))
		}
	}
	errs = append(errs, c.validateRegistration()...)
	if c.Registration.Enabled {
		errs = append(errs, c.Registration.validate()...)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// validateRegistration checks the registration service's token, organisation check and user blocking.
func (c Config) validateRegistration() []error {
	var errs []error
	if c.RegToken.Alg != "BP256R1" && c.RegToken.Alg != "ES256" {
		errs = append(errs, fmt.Errorf("regtoken.alg %q: want BP256R1 or ES256", c.RegToken.Alg))
	}
	if c.RegToken.Lifetime <= 0 || c.RegToken.Lifetime > time.Hour {
		errs = append(errs, errors.New("regtoken.lifetime must be positive and at most 1h"))
	}
	if c.RegToken.KeyFile != "" {
		for name, v := range map[string]string{"regtoken.cert_file": c.RegToken.CertFile, "regtoken.issuer": c.RegToken.Issuer, "regtoken.audience": c.RegToken.Audience} {
			if v == "" {
				errs = append(errs, fmt.Errorf("%s is required with regtoken.key_file", name))
			}
		}
	}
	if c.OrgCheck.Interval <= 0 || c.OrgCheck.Interval > 24*time.Hour {
		errs = append(errs, errors.New("orgcheck.interval must be positive and at most 24h"))
	}
	if c.OrgCheck.GracePeriod <= 0 {
		errs = append(errs, errors.New("orgcheck.grace_period must be positive"))
	}
	switch c.UserBlock.HomeserverKind {
	case "synapse", "dendrite":
	default:
		errs = append(errs, fmt.Errorf("user_block.homeserver_kind %q: want synapse or dendrite", c.UserBlock.HomeserverKind))
	}
	return errs
}

func (r Registration) validate() []error {
	var errs []error
	if u, err := url.Parse(r.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
		errs = append(errs, fmt.Errorf("registration.public_url %q: want the service's origin, e.g. https://reg.provider.example", r.PublicURL))
	}
	if len(r.SecretKey) < 32 {
		errs = append(errs, errors.New("registration.secret_key must have at least 32 bytes"))
	}
	if r.OIDC.Issuer == "" && !r.KIM.Enabled {
		errs = append(errs, errors.New("registration: set oidc.issuer or kim.enabled: an organisation needs a way to authenticate"))
	}
	if r.OIDC.Issuer != "" && r.OIDC.ClientID == "" {
		errs = append(errs, errors.New("registration.oidc.client_id is required with oidc.issuer"))
	}
	if r.KIM.Enabled && (r.SMTP.Host == "" || r.SMTP.From == "" || r.KIM.DirectoryFile == "") {
		errs = append(errs, errors.New("registration.kim needs smtp.host, smtp.from and kim.directory_file"))
	}
	for k, v := range map[string]int64{"session_ttl": int64(r.SessionTTL), "ticket_ttl": int64(r.TicketTTL), "max_failures": int64(r.MaxFailures),
		"lockout_base": int64(r.LockoutBase), "lockout_max": int64(r.LockoutMax), "max_services": int64(r.MaxServices),
		"kim.ttl": int64(r.KIM.TTL), "kim.max_attempts": int64(r.KIM.MaxAttempts), "smtp.timeout": int64(r.SMTP.Timeout)} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("registration.%s must be positive", k))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// EnvNames lists every environment variable Load understands, in field order.
func EnvNames() []string {
	var names []string
	walk(reflect.ValueOf(&Config{}).Elem(), EnvPrefix, func(name string, _ reflect.Value) { names = append(names, name) })
	return names
}

func applyEnv(cfg *Config, environ []string) error {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := make(map[string]bool)
	var errs []error
	walk(reflect.ValueOf(cfg).Elem(), EnvPrefix, func(name string, field reflect.Value) {
		known[name] = true
		v, ok := env[name]
		if !ok {
			return
		}
		if err := setField(field, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	for k := range env {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%s: unknown setting", k))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: environment: %w", errors.Join(errs...))
	}
	return nil
}

// walk calls fn for every leaf field with its environment variable name.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		name := prefix + strings.ToUpper(tag)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			walk(f, name+"_", fn)
			continue
		}
		fn(name, f)
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func setField(f reflect.Value, s string) error {
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		// Lists are comma-separated; an empty value clears the list.
		var list []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		f.Set(reflect.ValueOf(list))
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}
