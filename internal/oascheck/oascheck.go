// Package oascheck checks live HTTP traffic against gematik's OpenAPI files with
// github.com/getkin/kin-openapi: a Checker wraps a handler (a server under test, or a stand-in a client
// under test talks to), validates every request and every response against the interface file, and
// records each deviation. Contract tests assert that there are none.
//
// The interface files are gematik's, unchanged, in specs/ (api-ti-messenger, api-vzd), embedded so that
// the contract tests need nothing outside the repository.
package oascheck

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed specs
var specs embed.FS

// ReadFile returns one of the embedded interface files, by its path under specs/ (e.g.
// "api-vzd/FederationList_main.json").
func ReadFile(rel string) ([]byte, error) {
	b, err := specs.ReadFile(path.Join("specs", rel))
	if err != nil {
		return nil, fmt.Errorf("oascheck: %w", err)
	}
	return b, nil
}

// Checker validates traffic against one interface file.
type Checker struct {
	name   string
	router routers.Router

	mu         sync.Mutex
	violations []string
	checked    int
}

// Load reads the interface file rel (a path under specs/) and serves it at serverURL (scheme, host
// and base path of the server under test), replacing the file's own server list.
func Load(rel, serverURL string) (*Checker, error) {
	raw, err := ReadFile(rel)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("oascheck: %s: %w", rel, err)
	}
	// gematik's files carry examples that break their own schemas (ik: [108433248, …] for an array
	// of strings); examples are documentation, the schemas are the contract.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("oascheck: %s is not a valid OpenAPI document: %w", rel, err)
	}
	doc.Servers = openapi3.Servers{{URL: strings.TrimRight(serverURL, "/")}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &Checker{name: filepath.Base(rel), router: r}, nil
}

// Violations lists every deviation seen so far.
func (c *Checker) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Checked counts the exchanges validated (those whose route the file defines).
func (c *Checker) Checked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked
}

// Reset forgets the deviations seen so far.
func (c *Checker) Reset() {
	c.mu.Lock()
	c.violations = nil
	c.mu.Unlock()
}

func (c *Checker) record(format string, args ...any) {
	c.mu.Lock()
	c.violations = append(c.violations, c.name+": "+fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// bearerPresent stands in for the security schemes: the interfaces use OAuth2 or HTTP bearer tokens,
// whose value the server under test checks itself; the contract is that one is sent.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") && tok != "" {
		return nil
	}
	return errors.New("no bearer token")
}

// CheckRequest validates a request against the file; it returns the deviation or nil. A request whose
// route the file does not define is a deviation. The body is restored for the handler.
func (c *Checker) CheckRequest(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no such operation: %w", r.Method, r.URL.Path, err)
	}
	body, err := readBody(&r.Body)
	if err != nil {
		return nil, err
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, MultiError: true}}
	err = openapi3filter.ValidateRequest(r.Context(), in)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return in, fmt.Errorf("request %s %s: %v", r.Method, r.URL.Path, err)
	}
	return in, nil
}

// CheckResponse validates the answer to a request that CheckRequest found a route for.
func (c *Checker) CheckResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(in.Request.Context(), out); err != nil {
		return fmt.Errorf("response %d to %s %s: %v", status, in.Request.Method, in.Request.URL.Path, err)
	}
	return nil
}

// Wrap validates what passes through to next. Requests are always passed on, valid or not, so that a
// test sees how next answers a request outside the contract; the answer is validated when the file
// defines the route.
func (c *Checker) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, reqErr := c.CheckRequest(r)
		if reqErr != nil {
			c.record("%v", reqErr)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if in != nil {
			if err := c.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				c.record("%v", err)
			}
			c.mu.Lock()
			c.checked++
			c.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

const maxBody = 32 << 20

func readBody(rc *io.ReadCloser) ([]byte, error) {
	if *rc == nil || *rc == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(*rc, maxBody))
	_ = (*rc).Close()
	*rc = io.NopCloser(bytes.NewReader(b))
	return b, err
}
