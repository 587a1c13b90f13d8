package policyserve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/wasm/planvm"
)

var update = flag.Bool("update", false, "rewrite golden files")

// copyPolicies writes the embedded policies into a directory the test can edit.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	}))
	return dir
}

func enforce(b bool) *bool { return &b }

var operator = policyserve.Operator{
	Variant:           "basis",
	OwnDomains:        []string{"home.example.de"},
	ApprovedClientIDs: []string{"tim-client-1.0", "tim-web-2.1"},
	EnforceClientIDs:  enforce(true),
	Exemptions: []map[string]any{
		{"direction": "client", "method": "GET", "path": "/health"},
		{"direction": "egress", "host": "push.internal", "path_prefix": "/_matrix/push/"},
		{"method": "GET", "path": "/.well-known/matrix/support"},
	},
	Messages: map[string]string{"federation_unreachable": "Die Gegenseite ist nicht erreichbar"},
}

func TestMergeDataGolden(t *testing.T) {
	// A fixed input, so that the golden file changes only when the merge does, not with the policy defaults.
	defaults, err := os.ReadFile(filepath.Join("testdata", "defaults.json"))
	require.NoError(t, err)
	got, err := policyserve.MergeData(defaults, operator)
	require.NoError(t, err)
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, got, "", "  "))
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "merged-data.golden.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, pretty.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -update to create the golden file")
	assert.Equal(t, string(want), pretty.String())
}

func TestMergeDataRejects(t *testing.T) {
	cases := []struct {
		name     string
		defaults string
		op       policyserve.Operator
		want     string
	}{
		{"bad variant", `{"config":{}}`, policyserve.Operator{Variant: "gold"}, "variant"},
		{"not JSON", `{`, policyserve.Operator{}, "data.json"},
		{"config not an object", `{"config":[]}`, policyserve.Operator{}, "not an object"},
		{"own_domains not an object", `{"config":{"own_domains":[]}}`, policyserve.Operator{OwnDomains: []string{"x.de"}}, "not an object"},
		{"own domain not a server name", `{"config":{}}`, policyserve.Operator{OwnDomains: []string{"x.de/y"}}, "not a server name"},
		{"exemptions not a list", `{"config":{"exemptions":{}}}`, policyserve.Operator{}, `"exemptions" is not an array`},
		{"exemption not an object", `{"config":{"exemptions":["/health"]}}`, policyserve.Operator{}, "exemption 1: not an object"},
		{"exemption without path", `{"config":{}}`, exempting(map[string]any{"direction": "client"}), "exactly one of path and path_prefix"},
		{"exemption with path and prefix", `{"config":{}}`, exempting(map[string]any{"path": "/a", "path_prefix": "/a/b/"}), "exactly one of path and path_prefix"},
		{"exemption unknown field", `{"config":{}}`, exempting(map[string]any{"path": "/a", "query": "x"}), `unknown field "query"`},
		{"exemption method not a string", `{"config":{}}`, exempting(map[string]any{"path": "/a", "method": 1}), "method must be a non-empty string"},
		{"exemption unknown direction", `{"config":{}}`, exempting(map[string]any{"path": "/a", "direction": "sideways"}), `direction "sideways"`},
		{"prefix of a whole listener", `{"config":{}}`, exempting(map[string]any{"path_prefix": "/"}), "one full path segment"},
		{"prefix without full segment", `{"config":{}}`, exempting(map[string]any{"path_prefix": "/_matrix"}), "one full path segment"},
		{"prefix without slash", `{"config":{}}`, exempting(map[string]any{"path_prefix": "_matrix/key/v2"}), "one full path segment"},
		{"prefixes not a list", `{"config":{"exempt_prefixes":{"egress":{}}}}`, exempting(map[string]any{"path_prefix": "/a/b"}), "exempt_prefixes.egress is not an array"},
		{"index not an object", `{"config":{"exempt_paths":[]}}`, exempting(map[string]any{"path": "/a"}), "not an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policyserve.MergeData([]byte(c.defaults), c.op)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func exempting(e map[string]any) policyserve.Operator {
	return policyserve.Operator{Exemptions: []map[string]any{e}}
}

// TestOperatorExemptionsTakeEffect evaluates the embedded policy in the
// filter's VM over the merged data: the operator's exemptions, in list form,
// open exactly the requests they name.
func TestOperatorExemptionsTakeEffect(t *testing.T) {
	s, err := policyserve.New(context.Background(), policyserve.Config{Operator: operator})
	require.NoError(t, err)
	rev := s.Current()
	prog, err := planvm.Load(rev.Plan)
	require.NoError(t, err)
	cases := []struct {
		name, input, check string
	}{
		{"exact path on its listener", `{"direction":"client","method":"GET","path":"/health","host":"h","route":"other"}`, "exemption"},
		// Not exempt, and no endpoint of the listener's table: 404.
		{"exact path, other method", `{"direction":"client","method":"POST","path":"/health","host":"h","route":"other"}`, "endpoint"},
		{"exact path, other listener", `{"direction":"federation","method":"GET","path":"/health","host":"h","route":"other"}`, "endpoint"},
		{"prefix with host", `{"direction":"egress","method":"POST","path":"/_matrix/push/v1/notify","host":"push.internal","route":"other","federation_list_expired":false}`, "exemption"},
		{"prefix, other host", `{"direction":"egress","method":"POST","path":"/_matrix/push/v1/notify","host":"evil.de","route":"other","federation_list_expired":false}`, "federation"},
		{"no direction: client", `{"direction":"client","method":"GET","path":"/.well-known/matrix/support","host":"h","route":"other"}`, "exemption"},
		{"no direction: federation", `{"direction":"federation","method":"GET","path":"/.well-known/matrix/support","host":"h","route":"other"}`, "exemption"},
		{"default exemption kept", `{"direction":"federation","method":"GET","path":"/.well-known/matrix/server","host":"h","route":"well_known_server"}`, "exemption"},
		{"default prefix kept", `{"direction":"federation","method":"GET","path":"/_matrix/key/v2/server/k","host":"h","route":"key_server"}`, "exemption"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, ok, err := prog.EvalJSON(policies.ProxyDecision, []byte(c.input), rev.Data)
			require.NoError(t, err)
			require.True(t, ok)
			var d struct {
				Allow bool   `json:"allow"`
				Check string `json:"check"`
			}
			require.NoError(t, json.Unmarshal(out, &d))
			assert.Equal(t, c.check, d.Check)
			assert.Equal(t, c.check == "exemption", d.Allow)
		})
	}
}

func TestEmbeddedPolicyCompiles(t *testing.T) {
	s, err := policyserve.New(context.Background(), policyserve.Config{Operator: operator})
	require.NoError(t, err)
	rev := s.Current()
	require.NotNil(t, rev)
	assert.Len(t, rev.Revision, 16)
	assert.Contains(t, rev.Entrypoints, policies.ProxyDecision)

	var body struct {
		Revision string `json:"revision"`
		Plan     struct {
			Plans struct {
				Plans []struct {
					Name string `json:"name"`
				} `json:"plans"`
			} `json:"plans"`
		} `json:"plan"`
		Data struct {
			Config struct {
				Variant   string `json:"variant"`
				ClientIDs struct {
					Approved map[string]bool `json:"approved"`
				} `json:"client_ids"`
			} `json:"config"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rev.Body, &body))
	assert.Equal(t, rev.Revision, body.Revision)
	require.NotEmpty(t, body.Plan.Plans.Plans)
	assert.Equal(t, policies.ProxyDecision, body.Plan.Plans.Plans[0].Name)
	assert.Equal(t, "basis", body.Data.Config.Variant)
	assert.True(t, body.Data.Config.ClientIDs.Approved["tim-web-2.1"])
}

func TestReloadRefusesBrokenPolicyAndKeepsRevision(t *testing.T) {
	dir := copyPolicies(t)
	ctx := context.Background()
	s, err := policyserve.New(ctx, policyserve.Config{Dir: dir})
	require.NoError(t, err)
	first := s.Current()

	proxy := filepath.Join(dir, "proxy.rego")
	good, err := os.ReadFile(proxy)
	require.NoError(t, err)

	cases := []struct {
		name  string
		write func()
		want  string
	}{
		{"syntax error", func() { os.WriteFile(proxy, append(bytes.Clone(good), []byte("\nthis is not rego {")...), 0o644) }, "compile"},
		{"entrypoint missing", func() { os.WriteFile(proxy, []byte("package tim.other\n\nx := 1\n"), 0o644) }, "compile"},
		{"broken data.json", func() {
			os.WriteFile(proxy, good, 0o644)
			os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"config":`), 0o644)
		}, "data.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.write()
			rev, err := s.Reload(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Nil(t, rev)
			assert.Equal(t, first.Revision, s.Current().Revision, "the previous revision stays in service")
		})
	}

	// Fixed sources with different data: a new revision.
	require.NoError(t, os.WriteFile(proxy, good, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"config":{"variant":"basis"}}`), 0o644))
	rev, err := s.Reload(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first.Revision, rev.Revision)
	assert.Equal(t, rev.Revision, s.Current().Revision)

	// Same sources again: same revision.
	again, err := s.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, rev.Revision, again.Revision)
}

func TestNewFailsWithoutAGoodPolicy(t *testing.T) {
	dir := copyPolicies(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "proxy.rego"), []byte("package tim.proxy\nbroken {"), 0o644))
	_, err := policyserve.New(context.Background(), policyserve.Config{Dir: dir})
	require.Error(t, err)
}

func TestAdminReloadEndpoint(t *testing.T) {
	gin.SetMode(gin.TestMode)
	dir := copyPolicies(t)
	s, err := policyserve.New(context.Background(), policyserve.Config{Dir: dir})
	require.NoError(t, err)
	r := gin.New()
	s.RegisterAdmin(r, nil, nil)
	srv := httptest.NewServer(r)
	defer srv.Close()
	kept := s.Current().Revision

	post := func() (int, map[string]string) {
		resp, err := http.Post(srv.URL+"/admin/v1/policy/reload", "application/json", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	status, out := post()
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, kept, out["revision"])

	require.NoError(t, os.WriteFile(filepath.Join(dir, "invite.rego"), []byte("package tim.invite\nbroken {"), 0o644))
	status, out = post()
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Equal(t, kept, out["revision"])
	assert.Contains(t, out["error"], "invite.rego")
}

func TestReloadOnSIGHUP(t *testing.T) {
	dir := copyPolicies(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := policyserve.New(ctx, policyserve.Config{Dir: dir})
	require.NoError(t, err)
	before := s.Current().Revision
	s.ReloadOnSIGHUP(ctx)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"config":{"variant":"basis"}}`), 0o644))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	assert.Eventually(t, func() bool { return s.Current().Revision != before }, 30*time.Second, 10*time.Millisecond)
	assert.False(t, strings.Contains(s.Current().Revision, "sha256"))
}

func TestAdminReloadUsesServerWideReload(t *testing.T) {
	gin.SetMode(gin.TestMode)
	s, err := policyserve.New(context.Background(), policyserve.Config{})
	require.NoError(t, err)
	calls := 0
	r := gin.New()
	s.RegisterAdmin(r, func(ctx context.Context) error {
		calls++
		if _, err := s.Reload(ctx); err != nil {
			return err
		}
		return errors.New("invite policy refused")
	}, nil)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("POST", "/admin/v1/policy/reload", nil))
	assert.Equal(t, http.StatusUnprocessableEntity, w.Code)
	assert.JSONEq(t, `{"error":"invite policy refused","revision":"`+s.Current().Revision+`"}`, w.Body.String())
	assert.Equal(t, 1, calls)
}

// TestOwnDomainsAreDomains: an own domain written with a port or capitals
// is keyed as the filter looks it up.
func TestOwnDomainsAreDomains(t *testing.T) {
	out, err := policyserve.MergeData([]byte(`{"config":{}}`), policyserve.Operator{OwnDomains: []string{"Home.Example.de:8448"}})
	require.NoError(t, err)
	var d struct {
		Config struct {
			OwnDomains map[string]bool `json:"own_domains"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(out, &d))
	assert.Equal(t, map[string]bool{"home.example.de": true}, d.Config.OwnDomains)
}

// ExtraData's document is what a reload serves, and a failing ExtraData keeps the revision in service.
func TestExtraDataAppliedOnEveryReload(t *testing.T) {
	ctx := context.Background()
	var blocked atomic.Value
	blocked.Store("")
	fail := atomic.Bool{}
	s, err := policyserve.New(ctx, policyserve.Config{ExtraData: func(data []byte) ([]byte, error) {
		if fail.Load() {
			return nil, errors.New("no set")
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, err
		}
		set := map[string]bool{}
		if u := blocked.Load().(string); u != "" {
			set[u] = true
		}
		doc["config"].(map[string]any)["blocked_users"] = set
		return json.Marshal(doc)
	}})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Current()
	blocked.Store("@a:home.de")
	rev, err := s.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Config struct {
			BlockedUsers map[string]bool `json:"blocked_users"`
		} `json:"config"`
	}
	if err := json.Unmarshal(rev.Data, &doc); err != nil || !doc.Config.BlockedUsers["@a:home.de"] {
		t.Fatalf("data after reload: %s (%v)", rev.Data, err)
	}
	if rev.Revision == first.Revision {
		t.Fatal("new data, same revision: the proxies would not fetch it")
	}
	fail.Store(true)
	if _, err := s.Reload(ctx); err == nil || s.Current().Revision != rev.Revision {
		t.Fatalf("failing ExtraData: err %v, revision %s (want %s kept)", err, s.Current().Revision, rev.Revision)
	}
}
