package config

import (
	"flag"
	"gopkg.in/yaml.v3"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s differs from golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func TestLoadGolden(t *testing.T) {
	cases := []struct {
		name, file, golden string
		env                []string
	}{
		{"defaults", "", "defaults.golden.yaml", nil},
		{"full file", "testdata/full.yaml", "full.golden.yaml", nil},
		{"env overrides file", "testdata/full.yaml", "full-env.golden.yaml", []string{
			"TIM_CONTROL_STORAGE_POSTGRES_DSN=postgres://tim@db/tim",
			"TIM_CONTROL_INVITE_CACHE_TTL=30s",
			"TIM_CONTROL_INVITE_CACHE_SIZE=5",
			"TIM_CONTROL_INTERNAL_SHARED_SECRETS=from-env-0123456789,second-0123456789",
			"TIM_CONTROL_POLICY_APPROVED_CLIENT_IDS=client-a, client-b,",
			"PATH=/usr/bin", // not ours: ignored
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.file, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, out)
		})
	}
}

func TestEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Invite.CacheTTL != 10*time.Minute {
		t.Fatalf("empty file must give defaults, got %v", cfg.Invite.CacheTTL)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, "no such file"},
		{"unknown key", write("unknown.yaml", "public:\n  listn: x\n"), nil, "field listn not found"},
		{"bad duration in env", "", []string{"TIM_CONTROL_INVITE_CACHE_TTL=soon"}, "TIM_CONTROL_INVITE_CACHE_TTL"},
		{"bad number in env", "", []string{"TIM_CONTROL_INVITE_CACHE_SIZE=many"}, "TIM_CONTROL_INVITE_CACHE_SIZE"},
		{"unknown env", "", []string{"TIM_CONTROL_NOPE=1"}, "TIM_CONTROL_NOPE: unknown setting"},
		{"bad homeserver", "", []string{"TIM_CONTROL_HOMESERVER_URL=ftp://x"}, "homeserver.url"},
		{"zero cache", "", []string{"TIM_CONTROL_INVITE_CACHE_SIZE=0"}, "invite.cache_size must be positive"},
		{"negative ttl", "", []string{"TIM_CONTROL_HOMESERVER_TOKEN_CACHE_TTL=-1s"}, "homeserver.token_cache_ttl must be positive"},
		{"no storage", "", []string{"TIM_CONTROL_STORAGE_SQLITE_PATH="}, "storage"},
		{"bad level", "", []string{"TIM_CONTROL_LOG_LEVEL=loud"}, "log.level"},
		{"token lifetime over an hour", "", []string{"TIM_CONTROL_REGTOKEN_LIFETIME=61m"}, "regtoken.lifetime"},
		{"token alg", "", []string{"TIM_CONTROL_REGTOKEN_ALG=RS256"}, "regtoken.alg"},
		{"token key without cert", "", []string{"TIM_CONTROL_REGTOKEN_KEY_FILE=/k"}, "regtoken.cert_file is required"},
		{"org check less often than daily", "", []string{"TIM_CONTROL_ORGCHECK_INTERVAL=25h"}, "orgcheck.interval"},
		{"no grace period", "", []string{"TIM_CONTROL_ORGCHECK_GRACE_PERIOD=0s"}, "orgcheck.grace_period"},
		{"unknown homeserver kind", "", []string{"TIM_CONTROL_USER_BLOCK_HOMESERVER_KIND=conduit"}, "user_block.homeserver_kind"},
		{"registration without url", "", []string{"TIM_CONTROL_REGISTRATION_ENABLED=true", "TIM_CONTROL_REGISTRATION_OIDC_ISSUER=https://idp", "TIM_CONTROL_REGISTRATION_OIDC_CLIENT_ID=c"}, "registration.public_url"},
		{"registration without procedure", "", []string{"TIM_CONTROL_REGISTRATION_ENABLED=true", "TIM_CONTROL_REGISTRATION_PUBLIC_URL=https://reg.example"}, "set oidc.issuer or kim.enabled"},
		{"kim without smtp", "", []string{"TIM_CONTROL_REGISTRATION_ENABLED=true", "TIM_CONTROL_REGISTRATION_PUBLIC_URL=https://reg.example", "TIM_CONTROL_REGISTRATION_KIM_ENABLED=true"}, "registration.kim needs smtp.host"},
		{"short secret key", "", []string{"TIM_CONTROL_REGISTRATION_ENABLED=true", "TIM_CONTROL_REGISTRATION_PUBLIC_URL=https://reg.example", "TIM_CONTROL_REGISTRATION_OIDC_ISSUER=https://idp", "TIM_CONTROL_REGISTRATION_OIDC_CLIENT_ID=c", "TIM_CONTROL_REGISTRATION_SECRET_KEY=short"}, "registration.secret_key must have at least 32 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.file, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEnvNamesCoverEveryField(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"TIM_CONTROL_PUBLIC_LISTEN", "TIM_CONTROL_STORAGE_POSTGRES_DSN", "TIM_CONTROL_VZD_CLIENT_SECRET", "TIM_CONTROL_LOG_LEVEL"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Fatalf("%s missing from %v", want, names)
		}
	}
}
