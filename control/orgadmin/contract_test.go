package orgadmin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/orgadmin"
)

// validator checks every live request and response of the JSON API against openapi.yaml.
type validator struct {
	router routers.Router
	next   http.RoundTripper
	mu     sync.Mutex
	calls  int
	reqErr []string // requests the spec does not allow
	resErr []string // answers the spec does not allow
}

func newValidator(t *testing.T, base string) *validator {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(orgadmin.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: base + "/orgadmin/api/v1"}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{router: r, next: http.DefaultTransport}
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	name := req.Method + " " + req.URL.Path
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.fail(&v.resErr, fmt.Sprintf("%s: not in openapi.yaml: %v", name, err))
		return v.next.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: func(_ context.Context, a *openapi3filter.AuthenticationInput) error {
			if !strings.HasPrefix(a.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
				return fmt.Errorf("no bearer token")
			}
			return nil
		}}}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		v.fail(&v.reqErr, name+": "+err.Error())
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(rb)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		v.fail(&v.resErr, fmt.Sprintf("%s -> %d: %v", name, resp.StatusCode, err))
	}
	v.mu.Lock()
	v.calls++
	v.mu.Unlock()
	return resp, nil
}

func (v *validator) fail(list *[]string, s string) {
	v.mu.Lock()
	*list = append(*list, s)
	v.mu.Unlock()
}

func (v *validator) take() (req, res []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	req, res, v.reqErr, v.resErr = v.reqErr, v.resErr, nil, nil
	return
}

// Every operation of the API, good and bad, is called live; each request the client sends within
// the spec passes its validation, each refused one fails it, and every answer matches the spec.
func TestAPIContract(t *testing.T) {
	e := newEnv(t, withMail, kimPraxis)
	v := newValidator(t, e.url)
	e.client = &http.Client{Transport: v}

	valid := func(step string) {
		t.Helper()
		req, res := v.take()
		if len(req)+len(res) > 0 {
			t.Fatalf("%s: request errors %v, response errors %v", step, req, res)
		}
	}
	invalid := func(step string) {
		t.Helper()
		req, res := v.take()
		if len(res) > 0 {
			t.Fatalf("%s: response errors %v", step, res)
		}
		if len(req) == 0 {
			t.Fatalf("%s: the spec accepted a request the server refuses", step)
		}
	}

	// KIM onboarding, account, confirmation.
	st, out := e.api("POST", "/onboarding/kim", "", map[string]string{"kim_address": "praxis@beispiel.kim.telematik"})
	if st != http.StatusCreated {
		t.Fatalf("kim: %d %v", st, out)
	}
	valid("kim start")
	id, code := out["challenge_id"].(string), out["code"].(string)
	st, _ = e.api("POST", "/onboarding/kim/"+id, "", map[string]string{"code": "abc"})
	if st != http.StatusUnprocessableEntity {
		t.Fatalf("wrong code: %d", st)
	}
	valid("kim wrong code")
	_, out = e.api("POST", "/onboarding/kim/"+id, "", map[string]string{"code": code})
	valid("kim verify")
	ticket := out["ticket"].(string)
	st, _ = e.api("POST", "/onboarding/kim/"+id, "", map[string]string{"code": code})
	if st != http.StatusGone {
		t.Fatalf("reused link: %d", st)
	}
	valid("kim reuse")
	st, out = e.api("POST", "/account", "", map[string]string{"ticket": ticket, "username": "api-admin", "password": "kurz"})
	if st != http.StatusBadRequest || len(out["details"].([]any)) == 0 {
		t.Fatalf("weak password: %d %v", st, out)
	}
	valid("weak password")
	_, out = e.api("POST", "/account", "", map[string]string{"ticket": ticket, "username": "api-admin", "password": goodPassword})
	valid("account")
	secret := out["totp_secret"].(string)
	c, _ := orgadmin.TOTPCode(secret, e.clock.Now())
	st, out = e.api("POST", "/account/confirm", "", map[string]string{"ticket": ticket, "totp_code": c})
	if st != http.StatusCreated {
		t.Fatalf("confirm: %d %v", st, out)
	}
	valid("confirm")
	tok := out["token"].(string)

	// Signed-in operations.
	steps := []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/organization", nil, 200},
		{"GET", "/services", nil, 200},
		{"POST", "/services", map[string]string{"domain": "chat.praxis-beispiel.de"}, 202},
		{"POST", "/services", map[string]string{"domain": "chat.praxis-beispiel.de"}, 409},
		{"POST", "/services", map[string]string{"domain": "10.0.0.1"}, 400},
		{"GET", "/services/chat.praxis-beispiel.de", nil, 200},
		{"GET", "/services/nope.example.de", nil, 404},
		{"POST", "/users/block", map[string]string{"mxid": "@a:chat.praxis-beispiel.de"}, 404}, // not active yet
		{"POST", "/users/block", map[string]string{"mxid": "no-mxid"}, 400},
		{"GET", "/users/blocked", nil, 200},
		{"POST", "/token", nil, 200},
	}
	for _, s := range steps {
		if st, out := e.api(s.method, s.path, tok, s.body); st != s.status {
			t.Fatalf("%s %s: %d %v, want %d", s.method, s.path, st, out, s.status)
		}
		valid(s.method + " " + s.path)
	}
	http.Post(e.opURL+"/internal/v1/registration/services/chat.praxis-beispiel.de/approve", "", nil)
	for _, s := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/users/block", map[string]string{"mxid": "@a:chat.praxis-beispiel.de"}, 204},
		{"POST", "/users/end-sessions", map[string]string{"mxid": "@a:chat.praxis-beispiel.de"}, 204},
		{"GET", "/users/blocked", nil, 200},
		{"POST", "/users/unblock", map[string]string{"mxid": "@a:chat.praxis-beispiel.de"}, 204},
		{"DELETE", "/services/chat.praxis-beispiel.de", nil, 204},
		{"POST", "/logout", nil, 204},
		{"GET", "/services", nil, 401},
	} {
		if st, out := e.api(s.method, s.path, tok, s.body); st != s.status {
			t.Fatalf("%s %s: %d %v, want %d", s.method, s.path, st, out, s.status)
		}
		valid(s.method + " " + s.path)
	}
	tok = e.login("api-admin", secret, 1)
	valid("login")

	// Requests outside the spec are refused by the server as well.
	for _, bad := range []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"unknown field", "POST", "/services", "application/json", `{"domain":"x.example.de","telematikID":"9-x"}`, 400},
		{"text/plain body", "POST", "/services", "text/plain", `{"domain":"x.example.de"}`, 415},
		{"missing field", "POST", "/login", "application/json", `{"username":"api-admin"}`, 401},
		{"not JSON", "POST", "/onboarding/kim", "application/json", `kim_address=x`, 400},
	} {
		req, _ := http.NewRequest(bad.method, e.url+"/orgadmin/api/v1"+bad.path, strings.NewReader(bad.body))
		req.Header.Set("Content-Type", bad.ctype)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != bad.status {
			t.Fatalf("%s: %d, want %d", bad.name, resp.StatusCode, bad.status)
		}
		invalid(bad.name)
	}
	// Trailing data after the object: the validator's JSON reader does not see it; the server refuses it.
	req, _ := http.NewRequest("POST", e.url+"/orgadmin/api/v1/users/block", strings.NewReader(`{"mxid":"@a:b.de"}{"mxid":"@c:d.de"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := e.client.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("two objects: %v %v", resp.StatusCode, err)
	}
	if _, res := v.take(); len(res) > 0 {
		t.Fatalf("two objects: response errors %v", res)
	}
	if v.calls < 30 {
		t.Fatalf("only %d calls validated", v.calls)
	}
	_ = onboarding.KIMServiceIndicator
}
