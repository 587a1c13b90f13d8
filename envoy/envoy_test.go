// Package envoy holds the Envoy configuration of the messenger proxy. The tests keep it valid: the
// bootstrap must decode into Envoy's v3 API types and pass their validation rules, exactly as Envoy
// would check it at start, and its shape is pinned by a golden summary.
package envoy

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	// Every typed_config in envoy.yaml must resolve to a registered type, as in Envoy itself.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/bootstrap/internal_listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/internal_upstream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadBootstrap(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	raw, err := os.ReadFile("envoy.yaml")
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(raw)
	require.NoError(t, err)
	var b bootstrapv3.Bootstrap
	require.NoError(t, protojson.Unmarshal(js, &b), "envoy.yaml does not decode into envoy.config.bootstrap.v3.Bootstrap")
	return &b
}

func TestBootstrapIsValidV3(t *testing.T) {
	require.NoError(t, loadBootstrap(t).ValidateAll())
}

// listenerSummary is what the golden file pins: which listener runs the filter in which role, in front
// of which cluster. A change to the deployment's shape shows up as a diff of this file.
type listenerSummary struct {
	Name    string            `json:"name"`
	Port    uint32            `json:"port"`
	TLS     bool              `json:"tls"`
	Filters []string          `json:"http_filters"`
	Role    string            `json:"filter_role"`
	Routes  map[string]string `json:"routes"`
}

func TestBootstrapShape(t *testing.T) {
	b := loadBootstrap(t)
	var got []listenerSummary
	for _, l := range b.GetStaticResources().GetListeners() {
		got = append(got, summarize(t, l))
	}
	js, err := json.MarshalIndent(got, "", "  ")
	require.NoError(t, err)
	js = append(js, '\n')
	golden := "testdata/listeners.golden.json"
	if *update {
		require.NoError(t, os.WriteFile(golden, js, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./envoy -update to create %s", golden)
	require.Equal(t, string(want), string(js))
}

func summarize(t *testing.T, l *listenerv3.Listener) listenerSummary {
	t.Helper()
	require.Len(t, l.GetFilterChains(), 1, "listener %s", l.GetName())
	fc := l.GetFilterChains()[0]
	s := listenerSummary{Name: l.GetName(), Port: l.GetAddress().GetSocketAddress().GetPortValue(), TLS: fc.GetTransportSocket() != nil, Routes: map[string]string{}}
	var hcm hcmv3.HttpConnectionManager
	require.NoError(t, fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm))
	for _, f := range hcm.GetHttpFilters() {
		s.Filters = append(s.Filters, f.GetName())
		if f.GetName() != "envoy.filters.http.wasm" {
			continue
		}
		var w wasmfilterv3.Wasm
		require.NoError(t, f.GetTypedConfig().UnmarshalTo(&w))
		require.Equal(t, "/etc/envoy/tim-filter.wasm", w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename())
		var sv wrapperspb.StringValue
		require.NoError(t, w.GetConfig().GetConfiguration().UnmarshalTo(&sv))
		s.Role = pluginRole(t, []byte(sv.GetValue()))
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			key := r.GetMatch().GetPrefix()
			if p := r.GetMatch().GetPath(); p != "" {
				key = p
			}
			if r.GetMatch().GetConnectMatcher() != nil {
				key = "CONNECT"
			}
			s.Routes[key] = routeTarget(r)
		}
	}
	return s
}

func routeTarget(r *routev3.Route) string {
	target := r.GetRoute().GetCluster()
	if d := r.GetDirectResponse(); d != nil {
		target = "file " + d.GetBody().GetFilename()
	}
	if fc, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.wasm"]; ok {
		var c routev3.FilterConfig
		if fc.UnmarshalTo(&c) == nil && c.GetDisabled() {
			target += " (tim filter off)"
		}
	}
	return target
}
