// Package compose keeps the Docker Compose deployment correct: the file loads with the Compose
// specification's own loader, and everything it refers to exists in the repository.
package compose

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	controlconfig "github.com/timfd/fachdienst/control/config"
	pushgwconfig "github.com/timfd/fachdienst/pushgw/config"
)

// testEnv stands in for compose/.env: the file refuses to load without the secrets (":?" interpolation).
var testEnv = []string{"POSTGRES_PASSWORD=pw", "TIM_INTERNAL_SECRET=secret", "VZD_CLIENT_SECRET=vzd", "SYNAPSE_ADMIN_TOKEN=adm",
	"ENVOY_DIGEST=sha256:0000000000000000000000000000000000000000000000000000000000000000"}

func loadProject(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(env), cli.WithResolvedPaths(true), cli.WithConsistency(true))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

func TestComposeLoadsAndDefinesTheStack(t *testing.T) {
	p, err := loadProject(t, testEnv)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"envoy", "synapse", "tim-control", "tim-pushgw", "postgres"}, p.ServiceNames())

	envoy := p.Services["envoy"]
	var published []string
	for _, port := range envoy.Ports {
		published = append(published, port.Published+"->"+strconv.FormatUint(uint64(port.Target), 10))
	}
	require.ElementsMatch(t, []string{"443->8443", "8448->8448"}, published, "envoy publishes exactly the client-server and server-server listeners")
	for _, name := range []string{"synapse", "tim-control", "tim-pushgw", "postgres"} {
		require.Empty(t, p.Services[name].Ports, "%s must only be reachable through the messenger proxy", name)
	}
	dsn := p.Services["tim-control"].Environment["TIM_CONTROL_STORAGE_POSTGRES_DSN"]
	require.NotNil(t, dsn)
	require.Contains(t, *dsn, "@postgres:5432/")
}

func TestComposeRefusesToStartWithoutSecrets(t *testing.T) {
	_, err := loadProject(t, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "compose/.env")
}

// Every bind-mounted file, build context and Dockerfile target must exist, so that `docker compose up`
// does not fail on a machine we never see.
func TestComposeReferencesExist(t *testing.T) {
	p, err := loadProject(t, testEnv)
	require.NoError(t, err)
	dockerfileTargets := stagesOf(t, "Dockerfile")
	for name, svc := range p.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			_, err := os.Stat(v.Source)
			require.NoError(t, err, "service %s mounts %s", name, v.Source)
		}
		if svc.Build != nil {
			require.DirExists(t, svc.Build.Context)
			require.FileExists(t, filepath.Join(svc.Build.Context, svc.Build.Dockerfile))
			require.Contains(t, dockerfileTargets, svc.Build.Target, "service %s builds a stage the Dockerfile lacks", name)
		}
	}
}

// The Dockerfile builds the binaries from the packages that really exist.
func TestDockerfileBuildsExistingPackages(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	pkgs := regexp.MustCompile(`\./(control|pushgw|wasm)/cmd/[a-z-]+`).FindAllString(string(b), -1)
	require.Len(t, pkgs, 3)
	for _, pkg := range pkgs {
		matches, _ := filepath.Glob(filepath.Join("..", pkg, "*.go"))
		require.NotEmpty(t, matches, "Dockerfile builds %s, which has no Go files", pkg)
	}
}

func stagesOf(t *testing.T, dockerfile string) []string {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	require.NoError(t, err)
	var stages []string
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(b), -1) {
		stages = append(stages, m[1])
	}
	require.True(t, slices.Contains(stages, "build"))
	return stages
}

// The configuration files compose mounts must be accepted by the binaries that read them, with the
// environment compose hands those binaries.
func TestComposeConfigsLoad(t *testing.T) {
	p, err := loadProject(t, testEnv)
	require.NoError(t, err)

	control := p.Services["tim-control"]
	var environ []string
	for k, v := range control.Environment {
		if v != nil {
			environ = append(environ, k+"="+*v)
		}
	}
	cfg, err := controlconfig.Load("config/control.yaml", environ)
	require.NoError(t, err)
	require.Equal(t, "postgres://tim:pw@postgres:5432/tim?sslmode=disable", cfg.Storage.PostgresDSN)
	require.Equal(t, []string{"secret"}, cfg.Internal.SharedSecrets)

	raw, err := os.ReadFile("config/pushgw.yaml")
	require.NoError(t, err)
	_, err = pushgwconfig.Parse(raw)
	require.NoError(t, err)
}
