package orgadmin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/timfd/fachdienst/control/store"
	"github.com/timfd/fachdienst/control/vzd"
)

// OperatorService is an order as the provider's operator sees it.
type OperatorService struct {
	Domain           string    `json:"domain"`
	TelematikID      string    `json:"telematik_id"`
	OrganizationName string    `json:"organization_name"`
	IsInsurance      bool      `json:"is_insurance"`
	Status           string    `json:"status"`
	Message          string    `json:"message,omitempty"`
	OrderedAt        time.Time `json:"ordered_at"`
}

// operatorRoutes: the out-of-band confirmation of orders (A_23521). Only an operator who has
// confirmed an order with the organisation (for example by letter to its management) approves it;
// only then is the domain entered into the federation.
func (h *Handler) operatorRoutes() {
	const base = "/internal/v1/registration"
	m := h.op
	m.HandleFunc("GET "+base+"/services", func(w http.ResponseWriter, r *http.Request) {
		status := r.URL.Query().Get("status")
		if status == "" {
			status = store.ServicePending
		}
		if status != store.ServicePending && status != store.ServiceActive && status != store.ServiceRejected {
			writeProblem(w, problem(http.StatusBadRequest, "status: want pending, active or rejected"))
			return
		}
		limit := 500
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5000 {
				writeProblem(w, problem(http.StatusBadRequest, "limit: 1..5000"))
				return
			}
			limit = n
		}
		list, err := h.o.Store.OrgServicesByStatus(r.Context(), status, limit)
		if err != nil {
			writeProblem(w, h.internal("operator list", err))
			return
		}
		out := make([]OperatorService, 0, len(list))
		names := map[string]string{}
		for _, s := range list {
			if _, ok := names[s.TelematikID]; !ok {
				if a, err := h.o.Store.OrgAdminByTelematikID(r.Context(), s.TelematikID); err == nil {
					names[s.TelematikID] = a.OrgName
				}
			}
			out = append(out, OperatorService{Domain: s.Domain, TelematikID: s.TelematikID, OrganizationName: names[s.TelematikID],
				IsInsurance: s.IsInsurance, Status: s.Status, Message: s.Message, OrderedAt: s.OrderedAt})
		}
		writeJSON(w, http.StatusOK, map[string]any{"services": out})
	})
	m.HandleFunc("POST "+base+"/services/{domain}/approve", h.approve)
	m.HandleFunc("POST "+base+"/services/{domain}/reject", func(w http.ResponseWriter, r *http.Request) {
		d, ok := normDomain(r.PathValue("domain"))
		if !ok {
			writeProblem(w, problem(http.StatusNotFound, "No such order."))
			return
		}
		if err := h.o.Store.SetOrgServiceStatus(r.Context(), d, store.ServicePending, store.ServiceRejected, "The provider did not confirm the order.", h.o.Now()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeProblem(w, problem(http.StatusNotFound, "No pending order for this domain."))
				return
			}
			writeProblem(w, h.internal("reject", err))
			return
		}
		h.o.Logger.Info("orgadmin: order rejected by operator")
		w.WriteHeader(http.StatusNoContent)
	})
}

// approve enters a confirmed order into the federation (POST /federation with telematikID and
// isInsurance). A 409 (domain exists) or 400 (e.g. organisation not active) leaves the order
// pending with the VZD's reason; the operator sees it and decides.
func (h *Handler) approve(w http.ResponseWriter, r *http.Request) {
	d, ok := normDomain(r.PathValue("domain"))
	if !ok {
		writeProblem(w, problem(http.StatusNotFound, "No such order."))
		return
	}
	s, err := h.o.Store.OrgServiceByDomain(r.Context(), d)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, problem(http.StatusNotFound, "No such order."))
		return
	} else if err != nil {
		writeProblem(w, h.internal("approve", err))
		return
	}
	if s.Status != store.ServicePending {
		writeProblem(w, problem(http.StatusConflict, "The order is "+s.Status+", not pending."))
		return
	}
	if p := h.allowed(r.Context(), s.TelematikID); p != nil {
		writeProblem(w, p)
		return
	}
	_, err = h.o.Federation.AddDomain(r.Context(), vzd.Domain{Domain: s.Domain, TelematikID: s.TelematikID, IsInsurance: s.IsInsurance})
	switch {
	case err == nil:
	case errors.Is(err, vzd.ErrConflict) && h.registeredFor(r.Context(), s.Domain, s.TelematikID):
		// Already this provider's entry for this very organisation (e.g. entered before the order):
		// the confirmed order takes it over.
	case errors.Is(err, vzd.ErrConflict):
		h.o.Store.SetOrgServiceMessage(r.Context(), d, "The domain is already registered in the federation.")
		writeProblem(w, problem(http.StatusConflict, "The VZD answered 409: the domain is already registered in the federation."))
		return
	case errors.Is(err, vzd.ErrBadRequest):
		msg := "The VZD refused the domain (400)."
		var ae *vzd.APIError
		if errors.As(err, &ae) && ae.Message != "" {
			msg = "The VZD refused the domain (400): " + ae.Message
		}
		h.o.Store.SetOrgServiceMessage(r.Context(), d, msg)
		writeProblem(w, problem(http.StatusBadRequest, msg))
		return
	default:
		h.o.Logger.Warn("orgadmin: federation add failed", "error", err.Error())
		writeProblem(w, problem(http.StatusBadGateway, "The VZD could not be reached or failed; the order stays pending."))
		return
	}
	if err := h.o.Store.SetOrgServiceStatus(r.Context(), d, store.ServicePending, store.ServiceActive, "Entered into the TI federation.", h.o.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Withdrawn (or decided) while the VZD was asked: take the domain out again.
			if derr := h.o.Federation.DeleteDomain(r.Context(), d); derr != nil && !errors.Is(derr, vzd.ErrNotFound) {
				h.o.Logger.Error("orgadmin: withdrawn order left in the federation", "error", derr.Error())
			}
			writeProblem(w, problem(http.StatusConflict, "The order was withdrawn or decided meanwhile."))
			return
		}
		writeProblem(w, h.internal("approve", err))
		return
	}
	h.o.Logger.Info("orgadmin: order approved and entered into the federation")
	s.Status, s.Message = store.ServiceActive, "Entered into the TI federation."
	writeJSON(w, http.StatusOK, viewOf(s))
}

// domainLister reads this provider's entries in the federation (control/vzd.Client.Domains).
type domainLister interface {
	Domains(ctx context.Context, domain string) ([]vzd.Domain, error)
}

// registeredFor tells whether the VZD holds domain as this provider's entry for telematikID.
func (h *Handler) registeredFor(ctx context.Context, domain, telematikID string) bool {
	l, ok := h.o.Federation.(domainLister)
	if !ok {
		return false
	}
	list, err := l.Domains(ctx, domain)
	if err != nil {
		return false
	}
	for _, e := range list {
		if strings.EqualFold(e.Domain, domain) && e.TelematikID == telematikID {
			return true
		}
	}
	return false
}
