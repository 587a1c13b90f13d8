// Package gateway serves the Matrix Push Gateway API
// (POST /_matrix/push/v1/notify) in front of the delivery queue, plus the
// operational endpoints /healthz, /readyz and /metrics.
//
// Privacy (A_22808): of the notification only event_id, room_id, prio and
// counts are kept; content, sender, sender_display_name, room_name,
// room_alias and type are never decoded into anything that leaves this
// package.
package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/timfd/fachdienst/pushgw/delivery"
	"github.com/timfd/fachdienst/pushgw/metrics"
	"github.com/timfd/fachdienst/pushgw/push"
)

// Limits of a notify request.
const (
	MaxBody       = 512 << 10 // bytes
	MaxDevices    = 100
	MaxPushKeyLen = 512 // the Matrix pusher limit
	MaxAppIDLen   = 64  // the Matrix pusher limit
	MaxIDLen      = 255 // event and room ids (Matrix size limit of identifiers)
)

// NotifyPath is the only Push Gateway API route.
const NotifyPath = "/_matrix/push/v1/notify"

// Gateway is the HTTP front of the push gateway.
type Gateway struct {
	disp     *delivery.Dispatcher
	m        *metrics.Metrics
	gatherer prometheus.Gatherer
	log      *slog.Logger
	draining atomic.Bool
}

// New wires the gateway to its dispatcher. gatherer serves /metrics.
func New(disp *delivery.Dispatcher, m *metrics.Metrics, gatherer prometheus.Gatherer, log *slog.Logger) *Gateway {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gateway{disp: disp, m: m, gatherer: gatherer, log: log}
}

// Drain makes /readyz fail so that load balancers stop sending before the
// dispatcher shuts down.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Handler routes requests.
func (g *Gateway) Handler() http.Handler {
	var metricsHandler http.Handler = http.NotFoundHandler()
	if g.gatherer != nil {
		metricsHandler = promhttp.HandlerFor(g.gatherer, promhttp.HandlerOpts{})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case NotifyPath:
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				g.notifyError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request")
				return
			}
			g.notify(w, r)
		case "/healthz":
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		case "/readyz":
			if g.draining.Load() {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		case "/metrics":
			metricsHandler.ServeHTTP(w, r)
		default:
			writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		}
	})
}

// request mirrors the part of the notify body the gateway reads. The fields
// it drops are listed so that a wrong type there is still M_BAD_JSON, as the
// API defines them, but their values are discarded. (encoding/json matches
// names case-insensitively; the only client is the homeserver, and a variant
// spelling can only supply a field the gateway reads anyway.)
type request struct {
	Notification *notification `json:"notification"`
}

type notification struct {
	EventID           *string         `json:"event_id"`
	RoomID            *string         `json:"room_id"`
	Type              *string         `json:"type"`
	Sender            *string         `json:"sender"`
	SenderDisplayName *string         `json:"sender_display_name"`
	RoomName          *string         `json:"room_name"`
	RoomAlias         *string         `json:"room_alias"`
	Prio              *string         `json:"prio"`
	Content           json.RawMessage `json:"content"`
	Counts            *struct {
		Unread      *int `json:"unread"`
		MissedCalls *int `json:"missed_calls"`
	} `json:"counts"`
	Devices []*device `json:"devices"`
}

type device struct {
	AppID     *string                    `json:"app_id"`
	PushKey   *string                    `json:"pushkey"`
	PushKeyTS *int64                     `json:"pushkey_ts"`
	Data      map[string]json.RawMessage `json:"data"`
	Tweaks    map[string]json.RawMessage `json:"tweaks"`
}

type response struct {
	Rejected []string `json:"rejected"`
}

func (g *Gateway) notify(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			g.notifyError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
			return
		}
		g.notifyError(w, http.StatusBadRequest, "M_NOT_JSON", "Could not read the request body")
		return
	}
	if !json.Valid(body) {
		g.notifyError(w, http.StatusBadRequest, "M_NOT_JSON", "Request body is not JSON")
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		g.notifyError(w, http.StatusBadRequest, "M_BAD_JSON", "Request body has the wrong shape")
		return
	}
	notice, devs, msg := validate(&req)
	if msg != "" {
		g.notifyError(w, http.StatusBadRequest, "M_BAD_JSON", msg)
		return
	}

	rejected := make([]string, 0)
	jobs := make([]delivery.Job, 0, len(devs))
	for _, d := range devs {
		sender, ok := g.disp.Sender(d.AppID)
		var reason string
		switch {
		case !ok:
			reason = "unknown_app"
		case g.disp.Rejected(d.AppID, d.PushKey):
			reason = "remembered"
		case sender.Check(d) != nil:
			reason = "invalid_pusher"
		}
		if reason != "" {
			rejected = append(rejected, d.PushKey)
			if g.m != nil {
				app := d.AppID
				if !ok {
					app = "unknown" // unbounded label values stay out of metrics
				}
				g.m.Rejected.WithLabelValues(app, reason).Inc()
			}
			g.log.Info("pushkey rejected", "app_known", ok, "pushkey", push.Hash(d.PushKey), "reason", reason)
			continue
		}
		jobs = append(jobs, delivery.Job{AppID: d.AppID, Device: d, Notice: notice})
	}
	if len(jobs) > 0 {
		switch err := g.disp.Submit(jobs); {
		case errors.Is(err, delivery.ErrOverloaded):
			g.count(http.StatusTooManyRequests)
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "Too many pending notifications", "retry_after_ms": 1000})
			return
		case err != nil:
			g.notifyError(w, http.StatusServiceUnavailable, "M_UNAVAILABLE", "Shutting down")
			return
		}
	}
	g.count(http.StatusOK)
	writeJSON(w, http.StatusOK, response{Rejected: rejected})
}

// validate checks the shape the API requires and extracts what is kept.
func validate(req *request) (push.Notice, []push.Device, string) {
	n := req.Notification
	if n == nil {
		return push.Notice{}, nil, "notification is required"
	}
	if len(n.Devices) == 0 {
		return push.Notice{}, nil, "notification.devices must be a non-empty array"
	}
	if len(n.Devices) > MaxDevices {
		return push.Notice{}, nil, "too many devices"
	}
	if len(n.Content) > 0 && n.Content[0] != '{' && string(n.Content) != "null" {
		return push.Notice{}, nil, "notification.content must be an object"
	}
	var notice push.Notice
	if n.EventID != nil {
		if !validID(*n.EventID, '$') {
			return push.Notice{}, nil, "notification.event_id is not an event id"
		}
		notice.EventID = *n.EventID
	}
	if n.RoomID != nil {
		if !validID(*n.RoomID, '!') {
			return push.Notice{}, nil, "notification.room_id is not a room id"
		}
		notice.RoomID = *n.RoomID
	}
	if n.Prio != nil {
		if *n.Prio != "high" && *n.Prio != "low" {
			return push.Notice{}, nil, "notification.prio must be high or low"
		}
		notice.Prio = *n.Prio
	}
	if n.Counts != nil {
		if n.Counts.Unread != nil {
			if *n.Counts.Unread < 0 {
				return push.Notice{}, nil, "notification.counts.unread must not be negative"
			}
			notice.Counts.Unread = *n.Counts.Unread
		}
		if n.Counts.MissedCalls != nil {
			if *n.Counts.MissedCalls < 0 {
				return push.Notice{}, nil, "notification.counts.missed_calls must not be negative"
			}
			notice.Counts.MissedCalls = *n.Counts.MissedCalls
		}
	}
	devs := make([]push.Device, 0, len(n.Devices))
	for _, d := range n.Devices {
		if d == nil || d.AppID == nil || d.PushKey == nil {
			return push.Notice{}, nil, "every device needs app_id and pushkey"
		}
		if *d.AppID == "" || len(*d.AppID) > MaxAppIDLen || *d.PushKey == "" || len(*d.PushKey) > MaxPushKeyLen {
			return push.Notice{}, nil, "device app_id or pushkey has an invalid length"
		}
		devs = append(devs, push.Device{AppID: *d.AppID, PushKey: *d.PushKey, Data: keepData(d.Data)})
	}
	return notice, devs, ""
}

// keepData keeps only the pusher data fields a provider uses: encryption keys
// and the Web Push endpoint. Anything else a homeserver copies in is dropped.
func keepData(data map[string]json.RawMessage) map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for _, k := range [...]string{"p256dh", "auth", "endpoint"} {
		if v, ok := data[k]; ok {
			if out == nil {
				out = make(map[string]json.RawMessage, 3)
			}
			out[k] = v
		}
	}
	return out
}

func validID(s string, sigil byte) bool {
	return len(s) > 1 && len(s) <= MaxIDLen && s[0] == sigil && utf8.ValidString(s)
}

func (g *Gateway) notifyError(w http.ResponseWriter, status int, code, msg string) {
	g.count(status)
	writeError(w, status, code, msg)
}

func (g *Gateway) count(status int) {
	if g.m != nil {
		g.m.Requests.WithLabelValues(strconv.Itoa(status)).Inc()
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"errcode": code, "error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
