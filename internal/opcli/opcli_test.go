package opcli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestReadEnvFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "operator.env")
	if err := os.WriteFile(f, []byte("# comment\nTIM_ADMIN_URL=http://127.0.0.1:8484\nexport TIM_ADMIN_SECRET='s3cret'\n\nNOISE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := readEnvFile(f)
	if err != nil || m[EnvURL] != "http://127.0.0.1:8484" || m[EnvSecret] != "s3cret" || len(m) != 2 {
		t.Fatalf("%v %v", m, err)
	}
}

// A bundle directory is packed with the files OPA reads as a bundle, nothing else.
func TestBundleOfDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		".manifest": `{"revision":"x"}`, "proxy.rego": "package a", "proxy_test.rego": "package a_test", "data.json": "{}",
		"README.md": "no", "policies.go": "no", "testdata/routes/x.json": "no", "sub/data.json": `{"b":1}`, ".git/config": "no",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := bundleOf(dir)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	want := "/.manifest /data.json /proxy.rego /proxy_test.rego /sub/data.json"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("packed %s, want %s", got, want)
	}
	if _, err := bundleOf(t.TempDir()); err == nil {
		t.Fatal("an empty directory must be refused")
	}
}

// Exit codes and messages against an admin API that answers as the control plane does.
func TestExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/admin/v1/policy/reload":
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"error":"policy: compile: proxy.rego:3: rego_parse_error","revision":"abc"}`))
		case "/admin/v1/vzd/health":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"healthy":false,"checks":3,"last_error":"vzd federation list: HTTP 503","last_cause":"http_status 503"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	env := func(k string) string {
		return map[string]string{EnvURL: srv.URL, EnvSecret: "good"}[k]
	}
	for _, tc := range []struct {
		args          []string
		code          int
		stdout, stder string
	}{
		{[]string{"policy", "reload"}, ExitRefused, "", "proxy.rego:3"},
		{[]string{"vzd", "health"}, ExitRefused, "http_status 503", "unhealthy"},
		{[]string{"--secret", "bad", "policy", "status"}, ExitNoAccess, "", "refused the credential"},
		{[]string{"incidents"}, ExitNoAccess, "", "internal listener"},
		{[]string{"policy"}, ExitUsage, "", "needs a subcommand"},
		{[]string{"nonsense"}, ExitUsage, "", "unknown command"},
	} {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), tc.args, env, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stder) {
			t.Errorf("%v: exit %d, want %d\nstdout %s\nstderr %s", tc.args, code, tc.code, out.String(), errOut.String())
		}
	}
}
