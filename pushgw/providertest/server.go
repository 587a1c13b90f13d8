package providertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// CAPEM is the PEM of a TLS test server's certificate, for a ca_file.
func CAPEM(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func tlsServer(h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.StartTLS()
	return s
}

func reply(w http.ResponseWriter, rep Reply) {
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}

// APNs is a fake Apple push service: HTTP/2 over TLS, checks the ES256
// provider token (kid, iss, signature), apns-topic and apns-push-type.
type APNs struct {
	recorder
	Server *httptest.Server
	KeyP8  []byte
	KeyID  string
	TeamID string
	Topic  string
}

// NewAPNs starts the fake with a fresh signing key.
func NewAPNs(topic string) *APNs {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	a := &APNs{
		KeyP8:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		KeyID:  "KEY1234567",
		TeamID: "TEAM123456",
		Topic:  topic,
	}
	a.Server = tlsServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, &key.PublicKey) }))
	return a
}

func (a *APNs) serve(w http.ResponseWriter, r *http.Request, pub *ecdsa.PublicKey) {
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || r.Method != http.MethodPost || token == "" {
		reply(w, Reply{Status: 404, Body: `{"reason":"BadPath"}`})
		return
	}
	if r.ProtoMajor != 2 {
		a.fail("apns: not HTTP/2")
		reply(w, Reply{Status: 400, Body: `{"reason":"BadPath"}`})
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
	hdr, claims, err := verifyJWT(bearer, pub)
	if err != nil || hdr["alg"] != "ES256" || hdr["kid"] != a.KeyID || claims["iss"] != a.TeamID || claims["iat"] == nil {
		a.fail("apns: invalid provider token")
		reply(w, Reply{Status: 403, Body: `{"reason":"InvalidProviderToken"}`})
		return
	}
	if r.Header.Get("apns-topic") != a.Topic {
		a.fail("apns: wrong topic")
		reply(w, Reply{Status: 400, Body: `{"reason":"BadTopic"}`})
		return
	}
	if pt := r.Header.Get("apns-push-type"); pt != "alert" && pt != "background" {
		a.fail("apns: missing push type")
		reply(w, Reply{Status: 400, Body: `{"reason":"InvalidPushType"}`})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	if !json.Valid(body) || len(body) > 4096 {
		reply(w, Reply{Status: 400, Body: `{"reason":"PayloadTooLarge"}`})
		return
	}
	_, rep := a.next(token)
	a.add(Push{PushKey: token, Body: body, Status: rep.Status, Headers: map[string]string{
		"apns-priority": r.Header.Get("apns-priority"), "apns-push-type": r.Header.Get("apns-push-type"),
	}})
	if rep.Status == 200 {
		w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	}
	reply(w, rep)
}

// FCM is a fake Firebase Cloud Messaging HTTP v1 service with the OAuth2
// token endpoint of the service account it hands out.
type FCM struct {
	recorder
	Server             *httptest.Server
	ServiceAccountJSON []byte
	Project            string

	mu     sync.Mutex
	tokens map[string]bool
	grants int
}

// NewFCM starts the fake with a fresh service-account key.
func NewFCM(project string) *FCM {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	f := &FCM{Project: project, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) { f.token(w, r, &key.PublicKey) })
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.Server = tlsServer(mux)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	f.ServiceAccountJSON, _ = json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "sa-key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "pushgw@" + project + ".iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      f.Server.URL + "/token",
	})
	return f
}

// Grants counts successful token exchanges.
func (f *FCM) Grants() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants
}

func (f *FCM) token(w http.ResponseWriter, r *http.Request, pub *rsa.PublicKey) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		reply(w, Reply{Status: 400, Body: `{"error":"unsupported_grant_type"}`})
		return
	}
	hdr, claims, err := verifyJWT(r.PostForm.Get("assertion"), pub)
	if err != nil || hdr["alg"] != "RS256" || claims["aud"] != f.Server.URL+"/token" ||
		!strings.Contains(fmt.Sprint(claims["scope"]), "https://www.googleapis.com/auth/firebase.messaging") ||
		claims["iss"] != "pushgw@"+f.Project+".iam.gserviceaccount.com" {
		f.fail("fcm: invalid assertion")
		reply(w, Reply{Status: 400, Body: `{"error":"invalid_grant"}`})
		return
	}
	tok := fmt.Sprintf("ya29.test-%d", time.Now().UnixNano())
	f.mu.Lock()
	f.tokens[tok] = true
	f.grants++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func (f *FCM) send(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid := f.tokens[tok]
	f.mu.Unlock()
	if !valid {
		f.fail("fcm: missing or unknown access token")
		reply(w, Reply{Status: 401, Body: `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`})
		return
	}
	if r.PathValue("project") != f.Project {
		reply(w, Reply{Status: 403, Body: `{"error":{"code":403,"status":"PERMISSION_DENIED"}}`})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<10))
	var m struct {
		Message struct {
			Token string `json:"token"`
		} `json:"message"`
	}
	if json.Unmarshal(body, &m) != nil || m.Message.Token == "" {
		reply(w, Reply{Status: 400, Body: `{"error":{"code":400,"status":"INVALID_ARGUMENT"}}`})
		return
	}
	_, rep := f.next(m.Message.Token)
	f.add(Push{PushKey: m.Message.Token, Body: body, Status: rep.Status})
	if rep.Status == 200 {
		rep.Body = fmt.Sprintf(`{"name":"projects/%s/messages/1"}`, f.Project)
	}
	reply(w, rep)
}

// Unregistered is FCM's answer for a token that is gone.
var Unregistered = Reply{Status: 404, Body: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`}
