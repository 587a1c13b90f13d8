package compose

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestHomeserverLeavesOnlyThroughTheProxy: the homeserver does not verify
// federation certificates (the egress proxy breaks its TLS up and verifies
// the destination itself), which is safe only while the proxy is its one
// way out: it sits on an internal network alone with the parts it talks to.
func TestHomeserverLeavesOnlyThroughTheProxy(t *testing.T) {
	p, err := loadProject(t, testEnv)
	require.NoError(t, err)
	synapse := p.Services["synapse"]
	var nets []string
	for name := range synapse.Networks {
		nets = append(nets, name)
	}
	require.Equal(t, []string{"backend"}, nets, "the homeserver's networks")
	require.True(t, p.Networks["backend"].Internal, "the backend network must have no route out")
	require.False(t, p.Networks["edge"].Internal)
	for _, name := range []string{"envoy", "tim-control", "tim-pushgw"} {
		_, onEdge := p.Services[name].Networks["edge"]
		require.True(t, onEdge, "%s needs the outside", name)
	}
	_, pgEdge := p.Services["postgres"].Networks["edge"]
	require.False(t, pgEdge)
	for _, v := range []string{"http_proxy", "https_proxy"} {
		val := synapse.Environment[v]
		require.NotNil(t, val, v)
		require.Equal(t, "http://envoy:8080", *val)
	}
	raw, err := os.ReadFile("synapse/homeserver.yaml")
	require.NoError(t, err)
	var hs map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &hs))
	require.Equal(t, false, hs["federation_verify_certificates"])
}

// TestEnvoyImageUser: Envoy runs as uid 101 and the build needs the
// verified image digest.
func TestEnvoyImageUser(t *testing.T) {
	p, err := loadProject(t, testEnv)
	require.NoError(t, err)
	envoy := p.Services["envoy"]
	uid := envoy.Environment["ENVOY_UID"]
	require.NotNil(t, uid)
	require.Equal(t, "101", *uid)
	d := envoy.Build.Args["ENVOY_DIGEST"]
	require.NotNil(t, d)
	require.True(t, strings.HasPrefix(*d, "sha256:"))
	without := slices.DeleteFunc(slices.Clone(testEnv), func(s string) bool { return strings.HasPrefix(s, "ENVOY_DIGEST=") })
	_, err = loadProject(t, without)
	require.Error(t, err, "compose must refuse to build Envoy without the verified digest")
	readme, err := os.ReadFile("certs/README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "chown 101:101")
}

// TestWellKnownNamesTheHomeserver: the server discovery documents Envoy
// serves (5.1.2.2.1) name the homeserver's server name and public base URL.
func TestWellKnownNamesTheHomeserver(t *testing.T) {
	raw, err := os.ReadFile("synapse/homeserver.yaml")
	require.NoError(t, err)
	var hs struct {
		ServerName    string `yaml:"server_name"`
		PublicBaseURL string `yaml:"public_baseurl"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &hs))
	var server struct {
		Server string `json:"m.server"`
	}
	var client struct {
		Homeserver struct {
			BaseURL string `json:"base_url"`
		} `json:"m.homeserver"`
	}
	for f, into := range map[string]any{"well-known/server.json": &server, "well-known/client.json": &client} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, into), f)
	}
	host, port, ok := strings.Cut(server.Server, ":")
	require.True(t, ok, "m.server names the port: %q", server.Server)
	require.Equal(t, hs.ServerName, host)
	require.Equal(t, "8448", port, "federation goes to the server-server listener (published on 8448), not the client-server one")
	require.Equal(t, strings.TrimSuffix(hs.PublicBaseURL, "/"), strings.TrimSuffix(client.Homeserver.BaseURL, "/"))
}
