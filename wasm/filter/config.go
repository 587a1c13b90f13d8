package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/timfd/fachdienst/wasm/fedlist"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// Defaults of the plugin configuration.
const (
	DefaultRefreshInterval    = 60 * time.Second
	DefaultRefetchMinInterval = 10 * time.Second
	DefaultCalloutTimeout     = 2 * time.Second
	DefaultMaxBodyBytes       = 64 << 10
	// MaxBodyBytesLimit bounds max_body_bytes: bodies are buffered in the
	// proxy, and the routes the filter reads (createRoom, invite) are small.
	MaxBodyBytesLimit = 4 << 20
	// FederationListTTL is TTL_FederationList: a list not confirmed by the
	// control plane for longer than this blocks federation.
	FederationListTTL = 72 * time.Hour
)

// Fail modes.
const (
	FailClosed = "closed"
	DryRun     = "dry-run"
)

// Config is the validated plugin configuration.
type Config struct {
	// Direction is the policy's input.direction, from the role.
	Direction          string
	Cluster            string
	Authority          string
	CredentialHeader   string
	Credential         string
	CalloutTimeout     time.Duration
	Trust              *fedlist.TrustStore
	DryRun             bool
	RefreshInterval    time.Duration
	RefetchMinInterval time.Duration
	MaxBodyBytes       int
	// Policy is the inline policy, nil when none was configured.
	Policy *Policy
}

// Policy is a compiled plan with its data, as the control plane serves it.
type Policy struct {
	Revision string
	Program  *planvm.Program
	Data     planvm.Value
}

type configJSON struct {
	Role         string `json:"role"`
	ControlPlane struct {
		Cluster          string `json:"cluster"`
		Authority        string `json:"authority"`
		CredentialHeader string `json:"credential_header"`
		Credential       string `json:"credential"`
		CredentialEnv    string `json:"credential_env"`
		Timeout          string `json:"timeout"`
	} `json:"control_plane"`
	TrustAnchors       string          `json:"trust_anchors"`
	TrustAnchorsEnv    string          `json:"trust_anchors_env"`
	FailMode           string          `json:"fail_mode"`
	RefreshInterval    string          `json:"refresh_interval"`
	RefetchMinInterval string          `json:"refetch_min_interval"`
	MaxBodyBytes       int             `json:"max_body_bytes"`
	Policy             json.RawMessage `json:"policy"`
}

// durationField parses a Go duration string ("60s", "1m30s"); empty means
// the default.
func durationField(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as \"60s\"", name, v)
	}
	return d, nil
}

// inlineOrEnv returns a setting given either inline or as the name of an environment variable. Envoy
// hands chosen host variables to the Wasm VM (vm_config.environment_variables.host_env_keys), which
// keeps secrets and certificates out of the Envoy configuration itself.
func inlineOrEnv(field, inline, envName string, getenv func(string) string) (string, error) {
	switch {
	case inline != "" && envName != "":
		return "", fmt.Errorf("%s and %s_env: give one of them, not both", field, field)
	case envName != "":
		v := getenv(envName)
		if v == "" {
			return "", fmt.Errorf("%s_env: environment variable %s is not set in the Wasm VM (Envoy: vm_config.environment_variables.host_env_keys)", field, envName)
		}
		return v, nil
	}
	return inline, nil
}

// ParseConfig reads and validates the plugin configuration. The error names
// the field that is wrong; the plugin refuses to start with it.
func ParseConfig(b []byte) (*Config, error) { return parseConfig(b, os.Getenv) }

func parseConfig(b []byte, getenv func(string) string) (*Config, error) {
	var raw configJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("configuration is not valid JSON for the filter: %v", err)
	}
	c := &Config{}
	switch raw.Role {
	case "client", "federation", "egress":
		c.Direction = raw.Role
	case "":
		return nil, errors.New("role: missing (client, federation or egress)")
	default:
		return nil, fmt.Errorf("role: %q is not client, federation or egress", raw.Role)
	}
	cp := raw.ControlPlane
	c.Cluster = strings.TrimSpace(cp.Cluster)
	c.Authority = strings.TrimSpace(cp.Authority)
	c.CredentialHeader = strings.ToLower(strings.TrimSpace(cp.CredentialHeader))
	var err error
	if c.Credential, err = inlineOrEnv("control_plane.credential", cp.Credential, cp.CredentialEnv, getenv); err != nil {
		return nil, err
	}
	switch {
	case c.Cluster == "":
		return nil, errors.New("control_plane.cluster: missing")
	case c.Authority == "":
		return nil, errors.New("control_plane.authority: missing")
	case c.CredentialHeader == "" || strings.HasPrefix(c.CredentialHeader, ":"):
		// The internal API is never open: a credential is mandatory.
		return nil, errors.New("control_plane.credential_header: missing or a pseudo header")
	case c.Credential == "":
		return nil, errors.New("control_plane.credential: missing")
	}
	if c.CalloutTimeout, err = durationField("control_plane.timeout", cp.Timeout, DefaultCalloutTimeout); err != nil {
		return nil, err
	}
	if c.CalloutTimeout < 10*time.Millisecond || c.CalloutTimeout > time.Minute {
		return nil, errors.New("control_plane.timeout: must be between 10ms and 1m")
	}
	anchors, err := inlineOrEnv("trust_anchors", raw.TrustAnchors, raw.TrustAnchorsEnv, getenv)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(anchors) == "" {
		return nil, errors.New("trust_anchors: missing (PEM certificates of the federation list signers' CA)")
	}
	ts, err := fedlist.NewTrustStore([]byte(anchors))
	if err != nil {
		return nil, fmt.Errorf("trust_anchors: %v", err)
	}
	c.Trust = ts
	switch raw.FailMode {
	case "", FailClosed:
	case DryRun:
		c.DryRun = true
	default:
		return nil, fmt.Errorf("fail_mode: %q is not %q or %q", raw.FailMode, FailClosed, DryRun)
	}
	if c.RefreshInterval, err = durationField("refresh_interval", raw.RefreshInterval, DefaultRefreshInterval); err != nil {
		return nil, err
	}
	if c.RefreshInterval < time.Second || c.RefreshInterval > 24*time.Hour {
		return nil, errors.New("refresh_interval: must be between 1s and 24h")
	}
	if c.RefetchMinInterval, err = durationField("refetch_min_interval", raw.RefetchMinInterval, DefaultRefetchMinInterval); err != nil {
		return nil, err
	}
	if c.RefetchMinInterval < 0 || c.RefetchMinInterval > 24*time.Hour {
		return nil, errors.New("refetch_min_interval: must be between 0s and 24h")
	}
	c.MaxBodyBytes = raw.MaxBodyBytes
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > MaxBodyBytesLimit {
		return nil, fmt.Errorf("max_body_bytes: must be between 1024 and %d", MaxBodyBytesLimit)
	}
	if len(raw.Policy) > 0 && string(raw.Policy) != "null" {
		p, err := ParsePolicy(raw.Policy)
		if err != nil {
			return nil, fmt.Errorf("policy: %v", err)
		}
		c.Policy = p
	}
	return c, nil
}

// ParsePolicy reads a policy document {"revision", "plan", "data"} (the body
// of GET /internal/v1/policy, or the inline "policy" of the configuration)
// and loads its plan.
func ParsePolicy(b []byte) (*Policy, error) {
	var raw struct {
		Revision json.RawMessage `json:"revision"`
		Plan     json.RawMessage `json:"plan"`
		Data     json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a policy document: %v", err)
	}
	if len(raw.Plan) == 0 || string(raw.Plan) == "null" {
		return nil, errors.New("plan: missing")
	}
	prog, err := planvm.Load(raw.Plan)
	if err != nil {
		return nil, fmt.Errorf("plan: %v", err)
	}
	if !hasEntrypoint(prog, Entrypoint) {
		return nil, fmt.Errorf("plan: has no entrypoint %s", Entrypoint)
	}
	data := planvm.NewObject()
	if len(raw.Data) > 0 && string(raw.Data) != "null" {
		data, err = planvm.ParseJSON(raw.Data)
		if err != nil {
			return nil, fmt.Errorf("data: %v", err)
		}
		if data.Kind() != planvm.KindObject {
			return nil, errors.New("data: must be an object")
		}
	}
	p := &Policy{Program: prog, Data: data}
	// The revision is opaque; accept a string or a number.
	if len(raw.Revision) > 0 {
		var s string
		if json.Unmarshal(raw.Revision, &s) == nil {
			p.Revision = s
		} else {
			p.Revision = strings.TrimSpace(string(raw.Revision))
		}
	}
	return p, nil
}

func hasEntrypoint(p *planvm.Program, name string) bool {
	for _, e := range p.Entrypoints() {
		if e == name {
			return true
		}
	}
	return false
}
