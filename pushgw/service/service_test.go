package service_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/config"
	"github.com/timfd/fachdienst/pushgw/providertest"
	"github.com/timfd/fachdienst/pushgw/service"
)

func loadConfig(t *testing.T, dir, spool string) *config.Config {
	t.Helper()
	fake := providertest.NewFCM("tim-test")
	t.Cleanup(fake.Server.Close)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sa.json"), fake.ServiceAccountJSON, 0o600))
	p := filepath.Join(dir, "pushgw.yaml")
	require.NoError(t, os.WriteFile(p, []byte("queue: {spool: "+spool+"}\napps:\n  a: {type: fcm, service_account_file: sa.json}\n"), 0o600))
	c, err := config.Load(p)
	require.NoError(t, err)
	return c
}

func TestStartRefusesWhatWouldLoseData(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		spool string
		setup func()
		want  string
	}{
		"spool directory missing": {spool: filepath.Join(dir, "nope", "spool.jsonl"), want: "spool directory"},
		"spool unreadable garbage": {spool: filepath.Join(dir, "bad.jsonl"), setup: func() {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte("garbage\n"), 0o600))
		}, want: "spool"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			_, err := service.New(loadConfig(t, dir, tc.spool), nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// A valid spool directory starts.
	svc, err := service.New(loadConfig(t, dir, filepath.Join(dir, "ok.jsonl")), nil)
	require.NoError(t, err)
	n, err := svc.Shutdown(t.Context())
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoFileExists(t, filepath.Join(dir, "ok.jsonl"))
}
