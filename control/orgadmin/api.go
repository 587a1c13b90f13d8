package orgadmin

import (
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/timfd/fachdienst/control/store"
)

// OpenAPI describes the JSON API; it is served at /orgadmin/api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// apiError is the JSON error body of the API (openapi.yaml: Error).
type apiError struct {
	Error   string   `json:"error"`
	Details []string `json:"details,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	writeJSON(w, p.Status, apiError{Error: p.Message, Details: p.Details})
}

// readJSON decodes a JSON object body strictly: the declared media type, known fields only, one value.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		writeProblem(w, problem(http.StatusUnsupportedMediaType, "The body must be application/json."))
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, problem(http.StatusRequestEntityTooLarge, "The body is too large."))
			return false
		}
		writeProblem(w, problem(http.StatusBadRequest, "The body is not the expected JSON object."))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeProblem(w, problem(http.StatusBadRequest, "The body must hold exactly one JSON object."))
		return false
	}
	return true
}

var errUnauthenticated = problem(http.StatusUnauthorized, "A valid session token is required (Authorization: Bearer).")

// bearer wraps an API handler that needs an Org-Admin session given as bearer token.
func (h *Handler) bearer(fn func(w http.ResponseWriter, r *http.Request, p *principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil || !p.bearer {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orgadmin"`)
			writeProblem(w, errUnauthenticated)
			return
		}
		fn(w, r, p)
	}
}

type sessionOut struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *Handler) apiSession(w http.ResponseWriter, r *http.Request, a store.OrgAdmin, status int) {
	tok, exp, err := h.newSession(r.Context(), a.ID)
	if err != nil {
		writeProblem(w, h.internal("session", err))
		return
	}
	writeJSON(w, status, sessionOut{Token: tok, ExpiresAt: exp})
}

func (h *Handler) apiRoutes() {
	const v1 = "/orgadmin/api/v1"
	m := h.mux
	if h.o.KIM != nil {
		m.HandleFunc("POST "+v1+"/onboarding/kim", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				KIMAddress string `json:"kim_address"`
			}
			if !readJSON(w, r, &in) {
				return
			}
			id, code, err := h.o.KIM.Start(r.Context(), in.KIMAddress)
			if err != nil {
				writeProblem(w, h.onboardingProblem("kim start", err))
				return
			}
			writeJSON(w, http.StatusCreated, map[string]string{"challenge_id": id, "code": code})
		})
		m.HandleFunc("POST "+v1+"/onboarding/kim/{id}", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				Code string `json:"code"`
			}
			if !readJSON(w, r, &in) {
				return
			}
			ident, err := h.o.KIM.Verify(r.Context(), r.PathValue("id"), in.Code)
			if err != nil {
				writeProblem(w, h.onboardingProblem("kim verify", err))
				return
			}
			tok, prob := h.issueTicket(r.Context(), ident)
			if prob != nil {
				writeProblem(w, prob)
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"ticket": tok, "organization_name": ident.OrgName})
		})
	}
	m.HandleFunc("POST "+v1+"/account", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Ticket   string `json:"ticket"`
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		key, prob := h.setCredentials(r.Context(), in.Ticket, in.Username, in.Password, in.Password)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"totp_secret": key.Secret(), "totp_uri": key.URL()})
	})
	m.HandleFunc("POST "+v1+"/account/confirm", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Ticket   string `json:"ticket"`
			TOTPCode string `json:"totp_code"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		a, prob := h.confirmAccount(r.Context(), in.Ticket, in.TOTPCode)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		h.apiSession(w, r, a, http.StatusCreated)
	})
	m.HandleFunc("POST "+v1+"/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Username string `json:"username"`
			Password string `json:"password"`
			TOTPCode string `json:"totp_code"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		a, prob := h.login(r.Context(), in.Username, in.Password, in.TOTPCode)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		h.apiSession(w, r, a, http.StatusOK)
	})
	m.HandleFunc("POST "+v1+"/logout", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		if err := h.o.Store.DeleteOrgSession(r.Context(), p.session.TokenHash); err != nil {
			writeProblem(w, h.internal("logout", err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	m.HandleFunc("GET "+v1+"/organization", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		writeJSON(w, http.StatusOK, map[string]string{"telematik_id": p.admin.TelematikID, "profession_oid": p.admin.ProfessionOID,
			"organization_name": p.admin.OrgName, "username": p.admin.Username})
	}))
	m.HandleFunc("GET "+v1+"/services", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		list, prob := h.services(r.Context(), p.admin)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"services": list})
	}))
	m.HandleFunc("POST "+v1+"/services", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		var in struct {
			Domain string `json:"domain"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		s, prob := h.orderService(r.Context(), p.admin, in.Domain)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		writeJSON(w, http.StatusAccepted, s)
	}))
	m.HandleFunc("GET "+v1+"/services/{domain}", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		s, prob := h.service(r.Context(), p.admin, r.PathValue("domain"))
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		writeJSON(w, http.StatusOK, viewOf(s))
	}))
	m.HandleFunc("DELETE "+v1+"/services/{domain}", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		if prob := h.deleteService(r.Context(), p.admin, r.PathValue("domain")); prob != nil {
			writeProblem(w, prob)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	m.HandleFunc("GET "+v1+"/users/blocked", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		list, prob := h.blocked(r.Context(), p.admin)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": list})
	}))
	for _, action := range []string{"block", "unblock", "end-sessions"} {
		m.HandleFunc("POST "+v1+"/users/"+action, h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
			var in struct {
				MXID string `json:"mxid"`
			}
			if !readJSON(w, r, &in) {
				return
			}
			if prob := h.userAction(r.Context(), p.admin, action, in.MXID); prob != nil {
				writeProblem(w, prob)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
	}
	m.HandleFunc("POST "+v1+"/users/password", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		var in struct {
			MXID     string `json:"mxid"`
			Password string `json:"password"`
		}
		if !readJSON(w, r, &in) {
			return
		}
		if prob := h.setUserPassword(r.Context(), p.admin, in.MXID, in.Password); prob != nil {
			writeProblem(w, prob)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	m.HandleFunc("POST "+v1+"/token", h.bearer(func(w http.ResponseWriter, r *http.Request, p *principal) {
		tok, prob := h.issueToken(r.Context(), p.admin)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
	}))
	m.HandleFunc("GET "+v1+"/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(OpenAPI)
	})
	m.HandleFunc(v1+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem(http.StatusNotFound, "No such operation."))
	})
}
