package envoy

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	setfsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/set_filter_state/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
	"github.com/timfd/fachdienst/wasm/filter"
)

// MinimumEnvoy is the oldest Envoy the bootstrap is written for
// (docs/decisions/envoy.md): testdata/envoy-api-fields.txt lists its API.
const MinimumEnvoy = "v1.35.0"

// TestFieldsExistInMinimumEnvoy walks every field the bootstrap sets (inside
// typed configs too) and fails on one the oldest supported Envoy lacks: the
// bootstrap decodes with a newer API in go.mod, which would accept it.
func TestFieldsExistInMinimumEnvoy(t *testing.T) {
	f, err := os.Open("testdata/envoy-api-fields.txt")
	require.NoError(t, err)
	defer f.Close()
	known := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan()
	require.Contains(t, sc.Text(), "go-control-plane/envoy "+MinimumEnvoy, "regenerate the list: cd envoy/apifields && go run . > ../testdata/envoy-api-fields.txt")
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			known[l] = true
		}
	}
	require.NoError(t, sc.Err())
	used := map[string]bool{}
	walkSet(t, loadBootstrap(t).ProtoReflect(), used)
	require.NotEmpty(t, used)
	for name := range used {
		require.True(t, known[name], "envoy.yaml uses %s, which Envoy %s lacks", name, MinimumEnvoy)
	}
	// The walk sees the fields this check exists for.
	for _, f := range []string{
		"envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig.allow_dynamic_host_from_filter_state",
		"envoy.extensions.wasm.v3.PluginConfig.failure_policy",
		"envoy.extensions.wasm.v3.FailurePolicy.FAIL_RELOAD",
	} {
		require.True(t, used[f], "walk missed %s", f)
	}
}

// walkSet records "message.field" for every populated envoy.* field and
// "enum.VALUE" for every enum value set, unpacking Any values.
func walkSet(t *testing.T, m protoreflect.Message, used map[string]bool) {
	t.Helper()
	if any, ok := m.Interface().(*anypb.Any); ok {
		inner, err := any.UnmarshalNew()
		require.NoError(t, err, "typed_config %s", any.GetTypeUrl())
		walkSet(t, inner.ProtoReflect(), used)
		return
	}
	name := string(m.Descriptor().FullName())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if strings.HasPrefix(name, "envoy.") {
			used[name+"."+string(fd.Name())] = true
		}
		visit := func(v protoreflect.Value) {
			switch {
			case fd.Enum() != nil:
				if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil && strings.HasPrefix(string(fd.Enum().FullName()), "envoy.") {
					used[string(fd.Enum().FullName())+"."+string(ev.Name())] = true
				}
			case fd.Message() != nil:
				walkSet(t, v.Message(), used)
			}
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				visit(v.List().Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Message() != nil {
					walkSet(t, mv.Message(), used)
				}
				return true
			})
		default:
			visit(v)
		}
		return true
	})
}

// hcmOf returns a listener's HTTP connection manager.
func hcmOf(t *testing.T, l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
	t.Helper()
	var hcm hcmv3.HttpConnectionManager
	require.NoError(t, l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm))
	return &hcm
}

func typed[T proto.Message](t *testing.T, hcm *hcmv3.HttpConnectionManager, name string, into T) (T, bool) {
	t.Helper()
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() == name {
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(into))
			return into, true
		}
	}
	return into, false
}

// TestListenerSettings pins the settings of every listener that decide what
// the filter and the homeserver see (docs/decisions/envoy.md E2–E7).
func TestListenerSettings(t *testing.T) {
	b := loadBootstrap(t)
	vmOfRole := map[string]string{}
	for _, l := range b.GetStaticResources().GetListeners() {
		t.Run(l.GetName(), func(t *testing.T) {
			hcm := hcmOf(t, l)
			// E6: paths reach the filter and the homeserver unchanged, set explicitly.
			require.NotNil(t, hcm.GetNormalizePath(), "normalize_path must be explicit")
			require.False(t, hcm.GetNormalizePath().GetValue(), "normalize_path")
			require.False(t, hcm.GetMergeSlashes(), "merge_slashes")
			require.Equal(t, hcmv3.HttpConnectionManager_KEEP_UNCHANGED, hcm.GetPathWithEscapedSlashesAction())

			// E7: no x-envoy-* headers from the router.
			r, ok := typed(t, hcm, "envoy.filters.http.router", &routerv3.Router{})
			require.True(t, ok)
			require.True(t, r.GetSuppressEnvoyHeaders(), "suppress_envoy_headers")

			// E5, E7: the tim filter reloads after a trap, has a VM per role, and reads no body larger than
			// what Envoy buffers for it.
			w, ok := typed(t, hcm, "envoy.filters.http.wasm", &wasmfilterv3.Wasm{})
			require.True(t, ok)
			cfg := w.GetConfig()
			require.Equal(t, wasmv3.FailurePolicy_FAIL_RELOAD, cfg.GetFailurePolicy())
			require.Nil(t, cfg.GetAllowOnHeadersStopIteration(), "the filter pauses in the body callback; it needs no headers stop-iteration")
			var sv wrapperspb.StringValue
			require.NoError(t, cfg.GetConfiguration().UnmarshalTo(&sv))
			pc := parsePlugin(t, []byte(sv.GetValue()))
			vm := cfg.GetVmConfig().GetVmId()
			require.Equal(t, "tim_"+pc.Direction, vm, "one VM per role")
			if prev, ok := vmOfRole[pc.Direction]; ok {
				require.Equal(t, prev, vm)
			}
			vmOfRole[pc.Direction] = vm
			limit := l.GetPerConnectionBufferLimitBytes()
			require.NotNil(t, limit, "per_connection_buffer_limit_bytes must be explicit")
			require.GreaterOrEqual(t, int64(limit.GetValue()), int64(pc.MaxBodyBytes), "Envoy's buffer limit below the filter's max_body_bytes answers 413 before the filter decides")

			switch l.GetName() {
			case "client_server", "server_server":
				// E4: the homeserver reads the leftmost X-Forwarded-For; only the downstream address is there.
				require.True(t, hcm.GetUseRemoteAddress().GetValue())
				var xff bool
				for _, h := range hcm.GetRouteConfig().GetRequestHeadersToAdd() {
					if strings.EqualFold(h.GetHeader().GetKey(), "x-forwarded-for") {
						require.Equal(t, "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", h.GetHeader().GetValue())
						require.Equal(t, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD, h.GetAppendAction())
						xff = true
					}
				}
				require.True(t, xff, "X-Forwarded-For is not overwritten")
			case "egress":
				// E2: Synapse opens its tunnels with HTTP/1.0 CONNECT.
				require.True(t, hcm.GetHttpProtocolOptions().GetAcceptHttp_10(), "accept_http_10")
				// E3: the CONNECT target travels to egress_inspect in the filter state.
				sfs, ok := typed(t, hcm, "envoy.filters.http.set_filter_state", &setfsv3.Config{})
				require.True(t, ok)
				var found bool
				for _, v := range sfs.GetOnRequestHeaders() {
					if v.GetObjectKey() == "envoy.upstream.dynamic_host" {
						require.Equal(t, "%REQ(:authority)%", v.GetFormatString().GetTextFormatSource().GetInlineString())
						require.NotEqual(t, "NONE", v.GetSharedWithUpstream().String())
						found = true
					}
				}
				require.True(t, found)
			case "egress_inspect":
				d, ok := typed(t, hcm, "envoy.filters.http.dynamic_forward_proxy", &dfpv3.FilterConfig{})
				require.True(t, ok)
				require.True(t, d.GetAllowDynamicHostFromFilterState(), "egress must dial the CONNECT target")
			}
		})
	}
	require.Len(t, vmOfRole, 3)
}

func parsePlugin(t *testing.T, cfg []byte) *filter.Config {
	t.Helper()
	pki, err := fedlisttest.NewPKI("BP256R1", fedlisttest.Options{})
	require.NoError(t, err)
	t.Setenv("TIM_INTERNAL_AUTHORIZATION", "Bearer a-shared-secret-of-enough-length")
	t.Setenv("TIM_TRUST_ANCHORS", string(pki.RootPEM()))
	c, err := filter.ParseConfig(cfg)
	require.NoError(t, err)
	return c
}

// TestControlPlaneClusters: the clusters of the control plane are health
// checked and eject failing replicas (E7).
func TestControlPlaneClusters(t *testing.T) {
	seen := 0
	for _, c := range loadBootstrap(t).GetStaticResources().GetClusters() {
		if !strings.HasPrefix(c.GetName(), "tim_control") {
			continue
		}
		seen++
		require.NotEmpty(t, c.GetHealthChecks(), c.GetName())
		require.NotEmpty(t, c.GetHealthChecks()[0].GetHttpHealthCheck().GetPath(), c.GetName())
		require.NotNil(t, c.GetOutlierDetection(), c.GetName())
		require.Equal(t, clusterv3.Cluster_STRICT_DNS, c.GetType())
	}
	require.Equal(t, 2, seen)
}

// TestWellKnown: /.well-known/matrix/server and /client are served from
// the files compose mounts (5.1.2.2.1), without the filter.
func TestWellKnown(t *testing.T) {
	b := loadBootstrap(t)
	files := map[string]string{}
	for _, l := range b.GetStaticResources().GetListeners() {
		if l.GetName() != "client_server" {
			continue
		}
		for _, vh := range hcmOf(t, l).GetRouteConfig().GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if p := r.GetMatch().GetPath(); strings.HasPrefix(p, "/.well-known/matrix/") {
					require.NotNil(t, r.GetDirectResponse(), p)
					require.Contains(t, routeTarget(r), "(tim filter off)")
					files[p] = r.GetDirectResponse().GetBody().GetFilename()
				}
			}
		}
	}
	for path, member := range map[string]string{"/.well-known/matrix/server": "m.server", "/.well-known/matrix/client": "m.homeserver"} {
		f, ok := files[path]
		require.True(t, ok, path)
		local := "../compose/well-known/" + strings.TrimPrefix(f, "/etc/envoy/well-known/")
		raw, err := os.ReadFile(local)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(raw, &doc), local)
		require.Contains(t, doc, member, local)
	}
}

// TestImagePinned: the Envoy image is one tag, used with the digest the
// operator verified, and it is the release whose API go.mod decodes with
// (E8).
func TestImagePinned(t *testing.T) {
	df, err := os.ReadFile("../compose/Dockerfile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ARG ENVOY_VERSION=(v\d+\.\d+\.\d+)$`).FindSubmatch(df)
	require.NotNil(t, m, "compose/Dockerfile: ARG ENVOY_VERSION=vX.Y.Z")
	version := string(m[1])
	require.Regexp(t, `(?m)^FROM envoyproxy/envoy:\$\{ENVOY_VERSION\}@\$\{ENVOY_DIGEST\} AS envoy$`, string(df))
	require.Regexp(t, `(?m)^ARG ENVOY_DIGEST$`, string(df), "the digest has no default: the build needs the verified one")
	compose, err := os.ReadFile("../compose/compose.yaml")
	require.NoError(t, err)
	require.Contains(t, string(compose), "ENVOY_DIGEST: ${ENVOY_DIGEST:?")
	gomod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	g := regexp.MustCompile(`github.com/envoyproxy/go-control-plane/envoy (v\d+\.\d+\.\d+)`).FindSubmatch(gomod)
	require.NotNil(t, g)
	require.Equal(t, version, string(g[1]), "go.mod's go-control-plane must be the image's release: the bootstrap is decoded with its API")
	require.False(t, older(version, MinimumEnvoy), "the image %s is older than the minimum %s", version, MinimumEnvoy)
	// Every typed_config resolves in that API (as Envoy resolves them at start).
	_, err = protoregistry.GlobalTypes.FindMessageByURL("type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config")
	require.NoError(t, err)
}

// older reports whether release a (vX.Y.Z) is older than b.
func older(a, b string) bool {
	key := func(v string) [3]int {
		var k [3]int
		for i, p := range strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3) {
			for _, c := range p {
				k[i] = k[i]*10 + int(c-'0')
			}
		}
		return k
	}
	ka, kb := key(a), key(b)
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] < kb[i]
		}
	}
	return false
}
