package policyserve_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/control/policyserve"
)

// copyBundle copies the working tree's policies/ bundle (modules, tests, data, manifest).
func copyBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("../../policies")
	require.NoError(t, err)
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(n == ".manifest" || n == "data.json" || strings.HasSuffix(n, ".rego")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../../policies", n))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	return dir
}

// opaBuild writes what `opa build -b dir` writes.
func opaBuild(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, compile.New().WithAsBundle(true).WithPaths(dir).WithOutput(&buf).Build(context.Background()))
	return buf.Bytes()
}

func TestBundleFileEqualsDirectory(t *testing.T) {
	ctx := context.Background()
	dir := copyBundle(t)
	fromDir, err := policyserve.New(ctx, policyserve.Config{Dir: dir})
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "bundle.tar.gz")
	require.NoError(t, os.WriteFile(file, opaBuild(t, dir), 0o644))
	fromFile, err := policyserve.New(ctx, policyserve.Config{Bundle: file})
	require.NoError(t, err)

	d, f := fromDir.Current(), fromFile.Current()
	assert.Equal(t, d.Revision, f.Revision, "opa build of the directory serves the same revision")
	assert.Equal(t, "tim-policies-1", d.Manifest)
	assert.Equal(t, "tim-policies-1", f.Manifest)
	assert.Greater(t, d.Tests, 50, "the bundle's Rego tests ran")
	assert.Equal(t, d.Tests, f.Tests)
}

func TestFailingRegoTestRefused(t *testing.T) {
	ctx := context.Background()
	dir := copyBundle(t)
	s, err := policyserve.New(ctx, policyserve.Config{Dir: dir})
	require.NoError(t, err)
	kept := s.Current().Revision
	f, err := os.OpenFile(filepath.Join(dir, "invite_test.rego"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = f.WriteString("\ntest_expectation_of_the_operator if {\n\tdata.tim.invite.decision.allow == \"never\"\n}\n")
	require.NoError(t, f.Close())

	_, err = s.Check(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Rego tests failed")
	assert.Contains(t, err.Error(), ".test_expectation_of_the_operator (invite_test.rego:")
	_, err = s.Reload(ctx)
	require.Error(t, err)
	st := s.Status()
	assert.Equal(t, kept, st.Revision, "the previous revision stays")
	assert.Contains(t, st.LastError, "test_expectation_of_the_operator")
	assert.Equal(t, 1, st.Refused)
}

func TestWatchReloadsOnEdit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := copyBundle(t)
	s, err := policyserve.New(ctx, policyserve.Config{Dir: dir})
	require.NoError(t, err)
	before := s.Current().Revision
	require.NoError(t, s.Watch(ctx, nil))
	p := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, bytes.Replace(b, []byte(`"variant": "pro"`), []byte(`"variant": "epa"`), 1), 0o644))
	assert.Eventually(t, func() bool { return s.Current().Revision != before }, 30*time.Second, 20*time.Millisecond)
	assert.Contains(t, string(s.Current().Data), `"variant":"epa"`)
}

// tarGz packs files (name -> content) as a bundle.
func tarGz(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, b := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: "/" + n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

func TestShadowCandidate(t *testing.T) {
	ctx := context.Background()
	dir := copyBundle(t)
	s, err := policyserve.New(ctx, policyserve.Config{Dir: dir})
	require.NoError(t, err)
	cur := s.Current()
	r := gin.New()
	s.RegisterAdmin(r, nil, nil)
	do := func(method, path string, body []byte) (int, map[string]any) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader(body)))
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}

	// The same bundle as in service: refused, it cannot differ.
	same := opaBuild(t, dir)
	code, m := do("PUT", "/admin/v1/policy/shadow", same)
	assert.Equal(t, http.StatusUnprocessableEntity, code, m)
	// A broken bundle: refused with the error.
	code, m = do("PUT", "/admin/v1/policy/shadow", tarGz(t, map[string][]byte{"proxy.rego": []byte("package tim.proxy\nbroken {")}))
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, m["error"], "proxy.rego")
	code, _ = do("POST", "/admin/v1/policy/promote", nil)
	assert.Equal(t, http.StatusNotFound, code)

	// A candidate with other data.
	files := map[string][]byte{}
	require.NoError(t, fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, p))
		files[p] = b
		return err
	}))
	files["data.json"] = bytes.Replace(files["data.json"], []byte(`"variant": "pro"`), []byte(`"variant": "basis"`), 1)
	code, m = do("PUT", "/admin/v1/policy/shadow", tarGz(t, files))
	require.Equal(t, http.StatusOK, code, m)
	cand := m["candidate"].(string)
	assert.NotEqual(t, cur.Revision, cand)

	body, rev, shadow := s.Served()
	assert.Equal(t, cur.Revision, rev, "the revision in service is unchanged")
	assert.Equal(t, cand, shadow)
	var doc struct {
		Revision string `json:"revision"`
		Shadow   struct {
			Revision string          `json:"revision"`
			Plan     json.RawMessage `json:"plan"`
			Data     json.RawMessage `json:"data"`
		} `json:"shadow"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.Equal(t, cur.Revision, doc.Revision)
	assert.Equal(t, cand, doc.Shadow.Revision)
	assert.Contains(t, string(doc.Shadow.Data), `"variant":"basis"`)

	// The proxies' counts add up per candidate.
	s.ReportHeld(policyserve.ProxyReport{Proxy: "client@10.0.0.1", Revision: cur.Revision, Shadow: cand, ShadowEvaluated: 10, ShadowDiffer: 2})
	s.ReportHeld(policyserve.ProxyReport{Proxy: "federation@10.0.0.1", Revision: cur.Revision, Shadow: cand, ShadowEvaluated: 5, ShadowDiffer: 1})
	s.ReportHeld(policyserve.ProxyReport{Proxy: "egress@10.0.0.1", Revision: cur.Revision, Shadow: "older", ShadowEvaluated: 99, ShadowDiffer: 99})
	code, m = do("GET", "/admin/v1/policy/shadow", nil)
	require.Equal(t, http.StatusOK, code)
	assert.EqualValues(t, 15, m["evaluated"])
	assert.EqualValues(t, 3, m["differ"])
	assert.Len(t, s.Status().Proxies, 3)

	code, m = do("POST", "/admin/v1/policy/promote", nil)
	require.Equal(t, http.StatusOK, code, m)
	assert.Equal(t, cand, s.Current().Revision)
	_, rev, shadow = s.Served()
	assert.Equal(t, cand, rev)
	assert.Empty(t, shadow)
	code, _ = do("DELETE", "/admin/v1/policy/shadow", nil)
	assert.Equal(t, http.StatusNotFound, code)

	// A reload from the sources replaces the promoted revision.
	_, err = s.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, cur.Revision, s.Current().Revision)
}
