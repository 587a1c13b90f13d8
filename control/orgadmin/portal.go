package orgadmin

import (
	"bytes"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"strings"

	"github.com/pquerna/otp"

	"github.com/timfd/fachdienst/control/onboarding"
	"github.com/timfd/fachdienst/control/store"
)

//go:embed templates/pages.html
var templateFS embed.FS

var pages = func() map[string]*template.Template {
	base := template.Must(template.ParseFS(templateFS, "templates/pages.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"home", "error", "kim_start", "kim_sent", "kim_verify", "account_new", "account_totp", "login", "services", "users", "token"} {
		t := template.Must(base.Clone())
		template.Must(t.New("content").Parse(`{{template "` + name + `" .}}`))
		out[name] = t
	}
	return out
}()

type page struct {
	Title      string
	CSRF       string
	Admin      *store.OrgAdmin
	Problem    *Problem
	Notice     string
	Form       map[string]string
	OIDC, KIM  bool
	KIMCode    string
	KIMID      string
	OrgName    string
	TOTPSecret string
	TOTPQR     template.URL
	Services   []ServiceView
	Blocked    []BlockedView
	Token      string
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *principal, pg page) {
	pg.CSRF = h.csrfToken(w, r, p)
	if p != nil {
		pg.Admin = &p.admin
	}
	pg.OIDC, pg.KIM = h.o.OIDC != nil, h.o.KIM != nil
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", pg); err != nil {
		h.o.Logger.Error("orgadmin: template", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Handler) renderProblem(w http.ResponseWriter, r *http.Request, p *principal, prob *Problem) {
	h.render(w, r, prob.Status, "error", p, page{Title: "Not possible", Problem: prob})
}

var errCSRF = problem(http.StatusForbidden, "The form has expired or was not sent from this site. Please reload the page and try again.")

// form wraps a portal POST handler: form parsing and the CSRF check.
func (h *Handler) form(fn func(w http.ResponseWriter, r *http.Request, p *principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			h.renderProblem(w, r, nil, problem(http.StatusBadRequest, "The form could not be read."))
			return
		}
		p, _ := h.authenticate(r)
		if p != nil && p.bearer {
			p = nil // the portal never takes bearer tokens
		}
		if !h.checkCSRF(w, r, p) {
			h.renderProblem(w, r, nil, errCSRF)
			return
		}
		fn(w, r, p)
	}
}

// signedIn wraps a portal handler that needs an Org-Admin session.
func (h *Handler) signedIn(fn func(w http.ResponseWriter, r *http.Request, p *principal)) func(w http.ResponseWriter, r *http.Request, p *principal) {
	return func(w http.ResponseWriter, r *http.Request, p *principal) {
		if p == nil {
			http.Redirect(w, r, "/orgadmin/login", http.StatusSeeOther)
			return
		}
		fn(w, r, p)
	}
}

func (h *Handler) get(fn func(w http.ResponseWriter, r *http.Request, p *principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := h.authenticate(r)
		if p != nil && p.bearer {
			p = nil
		}
		fn(w, r, p)
	}
}

func (h *Handler) portalRoutes() {
	m := h.mux
	m.HandleFunc("GET /orgadmin/{$}", h.get(func(w http.ResponseWriter, r *http.Request, p *principal) {
		if p != nil {
			http.Redirect(w, r, "/orgadmin/services", http.StatusSeeOther)
			return
		}
		h.render(w, r, http.StatusOK, "home", nil, page{Title: "Registration"})
	}))
	m.HandleFunc("GET /orgadmin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/orgadmin/", http.StatusMovedPermanently)
	})

	// Onboarding with OIDC, and the OIDC sign-in of an existing Org-Admin.
	if h.o.OIDC != nil {
		start := func(purpose string) http.HandlerFunc {
			return h.form(func(w http.ResponseWriter, r *http.Request, _ *principal) {
				u, err := h.o.OIDC.Start(r.Context(), purpose, onboarding.Hash("browser", h.browserID(w, r)))
				if err != nil {
					h.renderProblem(w, r, nil, h.onboardingProblem("oidc start", err))
					return
				}
				http.Redirect(w, r, u, http.StatusSeeOther)
			})
		}
		m.HandleFunc("POST /orgadmin/onboarding/oidc", start("onboard"))
		m.HandleFunc("POST /orgadmin/login/oidc", start("login"))
		m.HandleFunc("GET /orgadmin/onboarding/oidc/callback", h.oidcCallback)
	}

	if h.o.KIM != nil {
		m.HandleFunc("GET /orgadmin/onboarding/kim", h.get(func(w http.ResponseWriter, r *http.Request, _ *principal) {
			h.render(w, r, http.StatusOK, "kim_start", nil, page{Title: "Authenticate by KIM"})
		}))
		m.HandleFunc("POST /orgadmin/onboarding/kim", h.form(func(w http.ResponseWriter, r *http.Request, _ *principal) {
			addr := r.PostFormValue("kim_address")
			_, code, err := h.o.KIM.Start(r.Context(), addr)
			if err != nil {
				pg := page{Title: "Authenticate by KIM", Problem: h.onboardingProblem("kim start", err), Form: map[string]string{"kim_address": addr}}
				h.render(w, r, pg.Problem.Status, "kim_start", nil, pg)
				return
			}
			h.render(w, r, http.StatusOK, "kim_sent", nil, page{Title: "Authentication mail sent", KIMCode: code})
		}))
		m.HandleFunc("GET /orgadmin/onboarding/kim/{id}", h.get(func(w http.ResponseWriter, r *http.Request, _ *principal) {
			id := r.PathValue("id")
			if err := h.o.KIM.Check(r.Context(), id); err != nil {
				h.renderProblem(w, r, nil, h.onboardingProblem("kim link", err))
				return
			}
			h.render(w, r, http.StatusOK, "kim_verify", nil, page{Title: "Confirm the KIM authentication", KIMID: id})
		}))
		m.HandleFunc("POST /orgadmin/onboarding/kim/{id}", h.form(func(w http.ResponseWriter, r *http.Request, _ *principal) {
			id := r.PathValue("id")
			ident, err := h.o.KIM.Verify(r.Context(), id, r.PostFormValue("code"))
			if err != nil {
				prob := h.onboardingProblem("kim verify", err)
				if errors.Is(err, onboarding.ErrWrongCode) {
					h.render(w, r, prob.Status, "kim_verify", nil, page{Title: "Confirm the KIM authentication", KIMID: id, Problem: prob})
					return
				}
				h.renderProblem(w, r, nil, prob)
				return
			}
			h.startAccount(w, r, ident)
		}))
	}

	// Account creation: username and password, then TOTP enrolment.
	m.HandleFunc("GET /orgadmin/account/new", h.get(func(w http.ResponseWriter, r *http.Request, _ *principal) {
		t, prob := h.ticket(r.Context(), cookie(r, cookieTicket))
		if prob != nil {
			h.renderProblem(w, r, nil, prob)
			return
		}
		h.render(w, r, http.StatusOK, "account_new", nil, page{Title: "Create the Org-Admin account", OrgName: t.OrgName})
	}))
	m.HandleFunc("POST /orgadmin/account/new", h.form(func(w http.ResponseWriter, r *http.Request, _ *principal) {
		tok := cookie(r, cookieTicket)
		_, prob := h.setCredentials(r.Context(), tok, r.PostFormValue("username"), r.PostFormValue("password"), r.PostFormValue("password_confirm"))
		if prob != nil {
			t, tp := h.ticket(r.Context(), tok)
			if tp != nil {
				h.renderProblem(w, r, nil, tp)
				return
			}
			h.render(w, r, prob.Status, "account_new", nil, page{Title: "Create the Org-Admin account", OrgName: t.OrgName, Problem: prob, Form: map[string]string{"username": r.PostFormValue("username")}})
			return
		}
		http.Redirect(w, r, "/orgadmin/account/totp", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /orgadmin/account/totp", h.get(func(w http.ResponseWriter, r *http.Request, _ *principal) {
		h.renderTOTP(w, r, http.StatusOK, nil)
	}))
	m.HandleFunc("POST /orgadmin/account/totp", h.form(func(w http.ResponseWriter, r *http.Request, _ *principal) {
		a, prob := h.confirmAccount(r.Context(), cookie(r, cookieTicket), r.PostFormValue("totp_code"))
		if prob != nil {
			if prob.Status == http.StatusUnprocessableEntity {
				h.renderTOTP(w, r, prob.Status, prob)
				return
			}
			h.renderProblem(w, r, nil, prob)
			return
		}
		h.setCookie(w, cookieTicket, "", 0)
		h.startSession(w, r, a)
	}))

	// Sign-in and sign-out.
	m.HandleFunc("GET /orgadmin/login", h.get(func(w http.ResponseWriter, r *http.Request, p *principal) {
		if p != nil {
			http.Redirect(w, r, "/orgadmin/services", http.StatusSeeOther)
			return
		}
		h.render(w, r, http.StatusOK, "login", nil, page{Title: "Sign in"})
	}))
	m.HandleFunc("POST /orgadmin/login", h.form(func(w http.ResponseWriter, r *http.Request, _ *principal) {
		a, prob := h.login(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"), r.PostFormValue("totp_code"))
		if prob != nil {
			h.render(w, r, prob.Status, "login", nil, page{Title: "Sign in", Problem: prob, Form: map[string]string{"username": r.PostFormValue("username")}})
			return
		}
		h.startSession(w, r, a)
	}))
	m.HandleFunc("POST /orgadmin/logout", h.form(func(w http.ResponseWriter, r *http.Request, p *principal) {
		if p != nil {
			h.o.Store.DeleteOrgSession(r.Context(), p.session.TokenHash)
		}
		h.setCookie(w, cookieSession, "", 0)
		http.Redirect(w, r, "/orgadmin/login", http.StatusSeeOther)
	}))

	// Messenger services.
	m.HandleFunc("GET /orgadmin/services", h.get(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		h.renderServices(w, r, p, http.StatusOK, nil, "", "")
	})))
	m.HandleFunc("POST /orgadmin/services", h.form(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		d := r.PostFormValue("domain")
		if _, prob := h.orderService(r.Context(), p.admin, d); prob != nil {
			h.renderServices(w, r, p, prob.Status, prob, "", d)
			return
		}
		h.renderServices(w, r, p, http.StatusOK, nil, "The order was received. It stays pending until the provider has confirmed it.", "")
	})))
	m.HandleFunc("POST /orgadmin/services/{domain}/delete", h.form(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		if prob := h.deleteService(r.Context(), p.admin, r.PathValue("domain")); prob != nil {
			h.renderServices(w, r, p, prob.Status, prob, "", "")
			return
		}
		h.renderServices(w, r, p, http.StatusOK, nil, "The messenger service was deleted.", "")
	})))

	// Users.
	m.HandleFunc("GET /orgadmin/users", h.get(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		h.renderUsers(w, r, p, http.StatusOK, nil, "", "")
	})))
	m.HandleFunc("POST /orgadmin/users", h.form(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		action, mxid := r.PostFormValue("action"), r.PostFormValue("mxid")
		if action == "password" {
			if prob := h.setUserPassword(r.Context(), p.admin, mxid, r.PostFormValue("new_password")); prob != nil {
				h.renderUsers(w, r, p, prob.Status, prob, "", mxid)
				return
			}
			h.renderUsers(w, r, p, http.StatusOK, nil, "The user's new password is set.", "")
			return
		}
		if prob := h.userAction(r.Context(), p.admin, action, mxid); prob != nil {
			h.renderUsers(w, r, p, prob.Status, prob, "", mxid)
			return
		}
		notice := map[string]string{"block": "The user is blocked.", "unblock": "The user is unblocked.", "end-sessions": "The user's sessions were ended."}[action]
		h.renderUsers(w, r, p, http.StatusOK, nil, notice, "")
	})))

	// RegService OpenID token.
	m.HandleFunc("GET /orgadmin/token", h.get(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		h.render(w, r, http.StatusOK, "token", p, page{Title: "RegService OpenID token"})
	})))
	m.HandleFunc("POST /orgadmin/token", h.form(h.signedIn(func(w http.ResponseWriter, r *http.Request, p *principal) {
		tok, prob := h.issueToken(r.Context(), p.admin)
		if prob != nil {
			h.render(w, r, prob.Status, "token", p, page{Title: "RegService OpenID token", Problem: prob})
			return
		}
		h.render(w, r, http.StatusOK, "token", p, page{Title: "RegService OpenID token", Token: tok})
	})))
}

func (h *Handler) renderServices(w http.ResponseWriter, r *http.Request, p *principal, status int, prob *Problem, notice, domain string) {
	list, lp := h.services(r.Context(), p.admin)
	if lp != nil {
		h.renderProblem(w, r, p, lp)
		return
	}
	h.render(w, r, status, "services", p, page{Title: "Messenger services", Problem: prob, Notice: notice, Services: list, Form: map[string]string{"domain": domain}})
}

func (h *Handler) renderUsers(w http.ResponseWriter, r *http.Request, p *principal, status int, prob *Problem, notice, mxid string) {
	list, lp := h.blocked(r.Context(), p.admin)
	if lp != nil {
		h.renderProblem(w, r, p, lp)
		return
	}
	h.render(w, r, status, "users", p, page{Title: "Users", Problem: prob, Notice: notice, Blocked: list, Form: map[string]string{"mxid": mxid}})
}

func (h *Handler) renderTOTP(w http.ResponseWriter, r *http.Request, status int, prob *Problem) {
	t, tp := h.ticket(r.Context(), cookie(r, cookieTicket))
	if tp != nil {
		h.renderProblem(w, r, nil, tp)
		return
	}
	if t.TOTPSecret == "" {
		http.Redirect(w, r, "/orgadmin/account/new", http.StatusSeeOther)
		return
	}
	key, err := h.totpKey(t)
	if err != nil {
		h.renderProblem(w, r, nil, h.internal("totp key", err))
		return
	}
	h.render(w, r, status, "account_totp", nil, page{Title: "Set up the second factor", TOTPSecret: key.Secret(), TOTPQR: qrDataURL(key), Problem: prob})
}

func qrDataURL(key *otp.Key) template.URL {
	img, err := key.Image(200, 200)
	if err != nil {
		return ""
	}
	var buf bytes.Buffer
	if png.Encode(&buf, img) != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
}

// startAccount hands an authenticated organisation on to the account creation.
func (h *Handler) startAccount(w http.ResponseWriter, r *http.Request, ident onboarding.Identity) {
	tok, prob := h.issueTicket(r.Context(), ident)
	if prob != nil {
		h.renderProblem(w, r, nil, prob)
		return
	}
	h.setCookie(w, cookieTicket, tok, h.o.TicketTTL)
	http.Redirect(w, r, "/orgadmin/account/new", http.StatusSeeOther)
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, a store.OrgAdmin) {
	tok, _, err := h.newSession(r.Context(), a.ID)
	if err != nil {
		h.renderProblem(w, r, nil, h.internal("session", err))
		return
	}
	h.setCookie(w, cookieSession, tok, h.o.SessionTTL)
	http.Redirect(w, r, "/orgadmin/services", http.StatusSeeOther)
}

// oidcCallback receives the IDP's answer: onboarding of a new organisation, or the SMC-B sign-in
// of the existing Org-Admin.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		// Consume the request so the state cannot be answered again.
		if st := q.Get("state"); st != "" && len(st) <= 128 {
			h.o.Store.TakeOIDCPending(r.Context(), st, h.o.Now())
		}
		desc := q.Get("error_description")
		if len(desc) > 200 {
			desc = desc[:200]
		}
		h.renderProblem(w, r, nil, problem(http.StatusUnauthorized, "The identity provider refused the sign-in.", strings.TrimSpace(e+": "+desc)))
		return
	}
	ident, purpose, err := h.o.OIDC.Finish(r.Context(), q.Get("state"), q.Get("code"), onboarding.Hash("browser", cookie(r, cookieBrowser)))
	if err != nil {
		h.renderProblem(w, r, nil, h.onboardingProblem("oidc callback", err))
		return
	}
	// An SMC-B sign-in is the re-authentication that lifts a suspension for inactivity (A_23094).
	h.reinstate(r.Context(), ident.TelematikID)
	if purpose == "login" {
		a, err := h.o.Store.OrgAdminByTelematikID(r.Context(), ident.TelematikID)
		if errors.Is(err, store.ErrNotFound) {
			h.renderProblem(w, r, nil, problem(http.StatusNotFound, "This organisation has no Org-Admin account yet. Please register it first."))
			return
		} else if err != nil {
			h.renderProblem(w, r, nil, h.internal("oidc login", err))
			return
		}
		h.startSession(w, r, a)
		return
	}
	h.startAccount(w, r, ident)
}
