// Package vzdcontract serves the VZD stand-in behind gematik's interface files, so that tests of the
// stand-in and of its clients check every exchange against the same contract.
package vzdcontract

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/internal/oascheck"
	standin "github.com/timfd/fachdienst/standin/vzd"
)

// Server is the stand-in with every exchange of the provider services and the authenticate service
// validated against the interface files.
type Server struct {
	URL       string
	Services  *oascheck.Checker // I_VZD_TIM_Provider_Services 1.4.0
	Auth      *oascheck.Checker // I_VZD_TI_Provider_Authenticate_Service
	VZD       *standin.Server
	Unchecked []string // exchanges on paths no file defines, as "METHOD path"
}

// New starts the stand-in built with opts; it stops when the test ends.
func New(t testing.TB, opts ...standin.Option) *Server {
	t.Helper()
	sv, err := standin.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	cs := &Server{VZD: sv}
	var svc, auth http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, standin.ServicesPath):
			svc.ServeHTTP(w, r)
		case r.URL.Path == standin.AuthenticatePath:
			auth.ServeHTTP(w, r)
		default:
			cs.Unchecked = append(cs.Unchecked, r.Method+" "+r.URL.Path)
			sv.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cs.URL = srv.URL
	if cs.Services, err = oascheck.Load("api-vzd/I_VZD_TIM_Provider_Services_v1.4.0.yaml", srv.URL+standin.ServicesPath); err != nil {
		t.Fatal(err)
	}
	if cs.Auth, err = oascheck.Load("api-vzd/I_VZD_TI_Provider_Authenticate_Service.yaml", srv.URL); err != nil {
		t.Fatal(err)
	}
	svc, auth = cs.Services.Wrap(sv), cs.Auth.Wrap(sv)
	return cs
}
