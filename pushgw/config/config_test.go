package config_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The parsed example, defaults applied, matches the golden file.
func TestExampleGolden(t *testing.T) {
	c, err := config.Load("testdata/pushgw.yaml")
	require.NoError(t, err)
	got, err := json.MarshalIndent(struct {
		Config  *config.Config
		Options any
	}{c, optionsView(c)}, "", "  ")
	require.NoError(t, err)
	golden := filepath.Join("testdata", "pushgw.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

func optionsView(c *config.Config) map[string]any {
	o := c.Options()
	return map[string]any{"capacity": o.Capacity, "max_delay": o.MaxDelay.String(), "spool": o.SpoolPath,
		"max_attempts": o.MaxAttempts, "reject_ttl": o.RejectTTL.String()}
}

func TestDefaultsAndZeroDelay(t *testing.T) {
	c, err := config.Parse([]byte("max_delay: 0s\napps:\n  a:\n    type: fcm\n    service_account_file: sa.json\n"))
	require.NoError(t, err)
	require.Equal(t, ":8090", c.Listen)
	require.Equal(t, "-1ns", c.Options().MaxDelay.String(), "zero means no delay")
	require.Equal(t, 8, c.Apps["a"].Concurrency)
	c, err = config.Parse([]byte("apps:\n  a:\n    type: fcm\n    service_account_file: sa.json\n"))
	require.NoError(t, err)
	require.Equal(t, "10s", c.Options().MaxDelay.String(), "default bound is 10 s")
}

func TestInvalid(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"no apps":           {"listen: :1\n", "at least one app id"},
		"unknown key":       {"apps: {}\nlisten_addr: x\n", "field listen_addr not found"},
		"delay above 10s":   {"max_delay: 11s\napps:\n  a: {type: fcm, service_account_file: x}\n", "max_delay must be between"},
		"negative delay":    {"max_delay: -1s\napps:\n  a: {type: fcm, service_account_file: x}\n", "max_delay must be between"},
		"unknown type":      {"apps:\n  a: {type: gcm}\n", "type must be apns, fcm or webpush"},
		"apns missing":      {"apps:\n  a: {type: apns, key_file: k}\n", "apps.a: key_id is required"},
		"apns platform":     {"apps:\n  a: {type: apns, key_file: k, key_id: i, team_id: t, topic: x, platform: dev}\n", "platform must be"},
		"webpush missing":   {"apps:\n  w: {type: webpush}\n", "apps.w: vapid_public_key is required"},
		"bad concurrency":   {"apps:\n  a: {type: fcm, service_account_file: x, concurrency: 5000}\n", "concurrency must be"},
		"bad capacity":      {"queue: {capacity: -5}\napps:\n  a: {type: fcm, service_account_file: x}\n", "queue.capacity"},
		"not yaml":          {"apps: [", "yaml"},
		"duration not text": {"max_delay: {}\napps:\n  a: {type: fcm, service_account_file: x}\n", "cannot unmarshal"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestBuildAppsReportsMissingFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("apps:\n  a: {type: fcm, service_account_file: missing.json}\n"), 0o600))
	c, err := config.Load(p)
	require.NoError(t, err)
	_, err = c.BuildApps()
	require.ErrorContains(t, err, filepath.Join(dir, "missing.json"))
}
