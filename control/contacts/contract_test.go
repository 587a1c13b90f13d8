package contacts_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/timfd/fachdienst/control/contacts"
	"github.com/timfd/fachdienst/control/store/storetest"
	"github.com/timfd/fachdienst/internal/oascheck"
)

type tokens map[string]string

func (v tokens) Verify(_ context.Context, tok string) (string, error) {
	if m, ok := v[tok]; ok {
		return m, nil
	}
	return "", contacts.ErrInvalidToken
}

// Each version's base path served and checked against its own interface file: a client of that version
// (1.0.0: no Mxid header; 1.0.3: with it) gets through every operation without a deviation.
func TestAgainstInterfaceFiles(t *testing.T) {
	files := map[string]string{"1.0.0": "api-ti-messenger/TiMessengerContactManagement_v1.0.0.yaml", "1.0.3": "api-ti-messenger/TiMessengerContactManagement_v1.0.3.yaml"}
	for _, v := range contacts.Versions {
		t.Run(v.Version, func(t *testing.T) {
			gin.SetMode(gin.TestMode)
			r := gin.New()
			contacts.New(contacts.Options{Store: storetest.SQLite(t), Verifier: tokens{"tok-alice": alice, "tok-bob": bob}, MaxPerOwner: 10,
				Now: func() time.Time { return now }}).Register(r)
			var checked http.Handler
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { checked.ServeHTTP(w, req) }))
			defer srv.Close()
			chk, err := oascheck.Load(files[v.Version], srv.URL+v.BasePath)
			if err != nil {
				t.Fatal(err)
			}
			checked = chk.Wrap(r)

			mxid := ""
			if v.MxidHeader {
				mxid = alice
			}
			start := now.Unix()
			do := func(method, path, ct, body, token string) int {
				t.Helper()
				req, _ := http.NewRequest(method, srv.URL+v.BasePath+path, strings.NewReader(body))
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				if mxid != "" {
					req.Header.Set("Mxid", mxid)
				}
				if ct != "" {
					req.Header.Set("Content-Type", ct)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			const js = "application/json"
			steps := []struct {
				method, path, ct, body string
				want                   int
			}{
				{"GET", "/", "", "", 200},
				{"GET", "/contacts", "", "", 200},
				{"POST", "/contacts", js, contactJSON(bob, "Bob", start, start+3600), 200},
				{"POST", "/contacts", js, contactJSON(bob, "Bob", start, nil), 409},
				{"POST", "/contacts", js, contactJSON("bob", "Bob", start, nil), 400},
				{"GET", "/contacts", "", "", 200},
				{"GET", "/contacts/" + bob, "", "", 200},
				{"GET", "/contacts/@nobody:x.de", "", "", 404},
				{"PUT", "/contacts", js, contactJSON(bob, "Bob B.", start, nil), 200},
				{"PUT", "/contacts", js, contactJSON("@nobody:x.de", "N", start, nil), 404},
				{"DELETE", "/contacts/" + bob, "", "", 204},
				{"DELETE", "/contacts/" + bob, "", "", 404},
			}
			for _, s := range steps {
				if got := do(s.method, s.path, s.ct, s.body, "tok-alice"); got != s.want {
					t.Fatalf("%s %s: %d, want %d", s.method, s.path, got, s.want)
				}
			}
			if vs := chk.Violations(); len(vs) > 0 {
				t.Fatalf("deviations from %s:\n%s", files[v.Version], strings.Join(vs, "\n"))
			}
			if chk.Checked() != len(steps) {
				t.Fatalf("checked %d exchanges, want %d", chk.Checked(), len(steps))
			}

			// Outside the contract: refused with an Error body the file allows.
			if got := do("POST", "/contacts", "text/plain", contactJSON(bob, "Bob", start, nil), "tok-alice"); got != 415 {
				t.Fatalf("text/plain body: %d, want 415", got)
			}
			if got := do("GET", "/contacts", "", "", ""); got != 401 {
				t.Fatalf("no token: %d, want 401", got)
			}
			vs := chk.Violations()
			if len(vs) != 2 || !strings.Contains(vs[0], "Content-Type") || !strings.Contains(vs[1], "security requirements failed") {
				t.Fatalf("want exactly the two request deviations, got:\n%s", strings.Join(vs, "\n"))
			}
		})
	}
}
