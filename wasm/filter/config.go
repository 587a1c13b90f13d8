package filter

import (
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
	// Shadow is the candidate revision evaluated beside this one (shadow.go); nil without one.
	Shadow *Policy
}

// configJSON is the configuration as written.
type configJSON struct {
	Role, FailMode                      string
	TrustAnchors, TrustAnchorsEnv       string
	RefreshInterval, RefetchMinInterval string
	MaxBodyBytes                        int64
	Policy                              planvm.Value // undefined when absent
	ControlPlane                        controlPlaneJSON
}

type controlPlaneJSON struct {
	Cluster, Authority, CredentialHeader, Credential, CredentialEnv, Timeout string
}

// stringField is a string member of a configuration object.
type stringField struct {
	name string
	dst  *string
}

// readConfigJSON reads the configuration strictly: an unknown member is an
// error (a misspelt setting must not silently fall back to its default), and
// so is a member of the wrong type; null counts as absent.
func readConfigJSON(doc planvm.Value) (*configJSON, error) {
	raw := &configJSON{}
	cp := &raw.ControlPlane
	top := []stringField{{"role", &raw.Role}, {"trust_anchors", &raw.TrustAnchors}, {"trust_anchors_env", &raw.TrustAnchorsEnv},
		{"fail_mode", &raw.FailMode}, {"refresh_interval", &raw.RefreshInterval}, {"refetch_min_interval", &raw.RefetchMinInterval}}
	nested := []stringField{{"cluster", &cp.Cluster}, {"authority", &cp.Authority}, {"credential_header", &cp.CredentialHeader},
		{"credential", &cp.Credential}, {"credential_env", &cp.CredentialEnv}, {"timeout", &cp.Timeout}}
	if err := readStrings(doc, "", top, "control_plane", "max_body_bytes", "policy"); err != nil {
		return nil, err
	}
	switch v := member(doc, "control_plane"); v.Kind() {
	case planvm.KindUndefined:
	case planvm.KindObject:
		if err := readStrings(v, "control_plane.", nested); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("control_plane: must be an object")
	}
	if v := member(doc, "max_body_bytes"); v.IsDefined() {
		var ok bool
		if raw.MaxBodyBytes, ok = v.AsInt64(); !ok {
			return nil, errors.New("max_body_bytes: must be an integer")
		}
	}
	raw.Policy = member(doc, "policy")
	return raw, nil
}

// readStrings reads the string members of the object o into fields and
// fails on a member that is neither one of them nor one of others. prefix
// names o in messages.
func readStrings(o planvm.Value, prefix string, fields []stringField, others ...string) error {
	var err error
	o.Iterate(func(k, v planvm.Value) bool {
		name, _ := k.AsString()
		for _, f := range fields {
			if f.name != name {
				continue
			}
			if v.Kind() == planvm.KindNull {
				return true
			}
			s, ok := v.AsString()
			if !ok {
				err = fmt.Errorf("%s%s: must be a string", prefix, name)
				return false
			}
			*f.dst = s
			return true
		}
		for _, n := range others {
			if n == name {
				return true
			}
		}
		err = fmt.Errorf("unknown field %q", prefix+name)
		return false
	})
	return err
}

// member returns o[key]; null counts as absent.
func member(o planvm.Value, key string) planvm.Value {
	v, _ := o.Get(key)
	if v.Kind() == planvm.KindNull {
		return planvm.Value{}
	}
	return v
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
	doc, err := planvm.ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("configuration is not valid JSON for the filter: %v", err)
	}
	if doc.Kind() != planvm.KindObject {
		return nil, errors.New("configuration is not a JSON object")
	}
	raw, err := readConfigJSON(doc)
	if err != nil {
		return nil, err
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
	if raw.MaxBodyBytes == 0 {
		raw.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if raw.MaxBodyBytes < 1024 || raw.MaxBodyBytes > MaxBodyBytesLimit {
		return nil, fmt.Errorf("max_body_bytes: must be between 1024 and %d", MaxBodyBytesLimit)
	}
	c.MaxBodyBytes = int(raw.MaxBodyBytes)
	if raw.Policy.IsDefined() {
		p, err := policyFromValue(raw.Policy)
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
	doc, err := planvm.ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("not a policy document: %v", err)
	}
	return policyFromValue(doc)
}

func policyFromValue(doc planvm.Value) (*Policy, error) {
	if doc.Kind() != planvm.KindObject {
		return nil, errors.New("not a policy document: not a JSON object")
	}
	plan, _ := doc.Get("plan")
	if k := plan.Kind(); k == planvm.KindUndefined || k == planvm.KindNull {
		return nil, errors.New("plan: missing")
	}
	prog, err := planvm.LoadValue(plan)
	if err != nil {
		return nil, fmt.Errorf("plan: %v", err)
	}
	if !hasEntrypoint(prog, Entrypoint) {
		return nil, fmt.Errorf("plan: has no entrypoint %s", Entrypoint)
	}
	data, _ := doc.Get("data")
	switch data.Kind() {
	case planvm.KindUndefined, planvm.KindNull:
		data = planvm.NewObject()
	case planvm.KindObject:
	default:
		return nil, errors.New("data: must be an object")
	}
	pol := &Policy{Program: prog, Data: data, Revision: revisionOf(doc)}
	if sh, ok := doc.Get("shadow"); ok && sh.Kind() != planvm.KindNull {
		if _, nested := sh.Get("shadow"); nested {
			return nil, errors.New("shadow: must not hold a shadow")
		}
		cand, err := policyFromValue(sh)
		if err != nil {
			return nil, fmt.Errorf("shadow: %v", err)
		}
		if cand.Revision == "" {
			return nil, errors.New("shadow: revision missing")
		}
		pol.Shadow = cand
	}
	return pol, nil
}

// revisionOf returns a policy document's revision. The revision is opaque:
// a string, or the text of a number; "" when it is absent or of another
// type.
func revisionOf(doc planvm.Value) string {
	v, _ := doc.Get("revision")
	if s, ok := v.AsString(); ok {
		return s
	}
	if s, ok := v.NumberText(); ok {
		return s
	}
	return ""
}

func hasEntrypoint(p *planvm.Program, name string) bool {
	for _, e := range p.Entrypoints() {
		if e == name {
			return true
		}
	}
	return false
}
