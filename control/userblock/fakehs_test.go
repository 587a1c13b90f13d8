package userblock_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// fakeHomeserver answers as the admin and client-server routes of Synapse (synapse/rest/admin/users.py,
// devices.py; api/auth/internal.py for locked users) and Dendrite v0.13.8 (clientapi/routing/admin.go
// AdminResetPassword; httputil.MakeAdminAPI) do, as far as blocking touches them: a recorded contract,
// with state, so that tests observe what the user would see (whoami and login answers).
type fakeHomeserver struct {
	kind       string // "synapse" or "dendrite"
	adminToken string

	mu    sync.Mutex
	users map[string]*fakeUser
	calls []string // admin calls, "METHOD path"
	fail  int      // answer admin calls with this status when set
}

type fakeUser struct {
	password string
	locked   bool
	devices  map[string]string // device id -> access token
}

func newFakeHomeserver(kind string) *fakeHomeserver {
	return &fakeHomeserver{kind: kind, adminToken: "admin-token", users: map[string]*fakeUser{}}
}

func (h *fakeHomeserver) addUser(mxid, password string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users[mxid] = &fakeUser{password: password, devices: map[string]string{}}
}

func token() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func matrixErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"errcode": code, "error": msg})
}

func (h *fakeHomeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := r.URL.Path
	switch {
	case r.Method == "POST" && p == "/_matrix/client/v3/login":
		h.login(w, r)
	case r.Method == "GET" && p == "/_matrix/client/v3/account/whoami":
		h.whoami(w, r)
	case strings.HasPrefix(p, "/_synapse/admin/") && h.kind == "synapse",
		strings.HasPrefix(p, "/_dendrite/admin/") && h.kind == "dendrite":
		h.calls = append(h.calls, r.Method+" "+p)
		if r.Header.Get("Authorization") != "Bearer "+h.adminToken {
			matrixErr(w, http.StatusForbidden, "M_FORBIDDEN", "This API can only be used by admin users.")
			return
		}
		if h.fail != 0 {
			matrixErr(w, h.fail, "M_UNKNOWN", "Internal server error")
			return
		}
		if h.kind == "synapse" {
			h.synapseAdmin(w, r)
		} else {
			h.dendriteAdmin(w, r)
		}
	default:
		matrixErr(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

func (h *fakeHomeserver) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Identifier struct {
			User string `json:"user"`
		} `json:"identifier"`
		Password string `json:"password"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	id := in.Identifier.User
	if !strings.HasPrefix(id, "@") {
		for known := range h.users {
			if strings.HasPrefix(known, "@"+id+":") {
				id = known
			}
		}
	}
	u, ok := h.users[id]
	if !ok || u.password != in.Password {
		matrixErr(w, http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
		return
	}
	dev, tok := "DEV"+token()[:6], token()
	u.devices[dev] = tok
	writeJSON(w, http.StatusOK, map[string]string{"user_id": id, "access_token": tok, "device_id": dev})
}

func (h *fakeHomeserver) whoami(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	for id, u := range h.users {
		for _, t := range u.devices {
			if t != tok {
				continue
			}
			if u.locked {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"errcode": "M_USER_LOCKED", "error": "User account has been locked", "soft_logout": true})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"user_id": id})
			return
		}
	}
	matrixErr(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown access token")
}

func (h *fakeHomeserver) synapseAdmin(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/_synapse/admin/v1/reset_password/"); ok && r.Method == "POST" {
		var body struct {
			NewPassword   string `json:"new_password"`
			LogoutDevices *bool  `json:"logout_devices"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.NewPassword == "" {
			matrixErr(w, http.StatusBadRequest, "M_MISSING_PARAM", "Missing params: ['new_password']")
			return
		}
		u, known := h.users[id]
		if !known {
			matrixErr(w, http.StatusNotFound, "M_NOT_FOUND", "User not found")
			return
		}
		u.password = body.NewPassword
		if body.LogoutDevices == nil || *body.LogoutDevices {
			clear(u.devices)
		}
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/_synapse/admin/v2/users/")
	if !ok {
		matrixErr(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	id, sub, _ := strings.Cut(rest, "/")
	u, known := h.users[id]
	switch {
	case sub == "" && r.Method == "GET":
		if !known {
			matrixErr(w, http.StatusNotFound, "M_NOT_FOUND", "User not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": id, "locked": u.locked, "deactivated": false})
	case sub == "" && r.Method == "PUT":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if !known { // Synapse creates the user
			u = &fakeUser{devices: map[string]string{}}
			h.users[id] = u
		}
		if l, ok := body["locked"].(bool); ok {
			u.locked = l
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": id, "locked": u.locked})
	case sub == "devices" && r.Method == "GET":
		if !known {
			matrixErr(w, http.StatusNotFound, "M_NOT_FOUND", "Unknown user")
			return
		}
		var devs []map[string]string
		for d := range u.devices {
			devs = append(devs, map[string]string{"device_id": d, "user_id": id})
		}
		writeJSON(w, http.StatusOK, map[string]any{"devices": devs, "total": len(devs)})
	case sub == "delete_devices" && r.Method == "POST":
		if !known {
			matrixErr(w, http.StatusNotFound, "M_NOT_FOUND", "Unknown user")
			return
		}
		var body struct {
			Devices []string `json:"devices"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Devices == nil {
			matrixErr(w, http.StatusBadRequest, "M_MISSING_PARAM", "Missing params: ['devices']")
			return
		}
		for _, d := range body.Devices {
			delete(u.devices, d)
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		matrixErr(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
}

func (h *fakeHomeserver) dendriteAdmin(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/_dendrite/admin/resetPassword/")
	if !ok || r.Method != "POST" {
		matrixErr(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return
	}
	u, known := h.users[id]
	if !known {
		matrixErr(w, http.StatusNotFound, "M_UNKNOWN", "User does not exist")
		return
	}
	var body struct {
		Password      string `json:"password"`
		LogoutDevices bool   `json:"logout_devices"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		matrixErr(w, http.StatusBadRequest, "M_UNKNOWN", "Failed to decode request body")
		return
	}
	if body.Password == "" {
		matrixErr(w, http.StatusBadRequest, "M_MISSING_PARAM", "Expecting non-empty password.")
		return
	}
	if len(body.Password) < 8 || len(body.Password) > 512 {
		matrixErr(w, http.StatusBadRequest, "M_WEAK_PASSWORD", "password too weak or too long")
		return
	}
	u.password = body.Password
	if body.LogoutDevices {
		clear(u.devices)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"password_updated": true})
}
