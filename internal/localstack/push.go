package localstack

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	webpush "github.com/SherClockHolmes/webpush-go"
	"sigs.k8s.io/yaml"

	pushconfig "github.com/timfd/fachdienst/pushgw/config"
	"github.com/timfd/fachdienst/pushgw/service"
)

// pushAppID is the one app id the local push gateway serves (Web Push, with a VAPID key pair
// generated at the first start and kept in the data dir).
const pushAppID = "de.tim-local.web"

func (s *Stack) startPush(listen func(int) (net.Listener, string, error)) error {
	keyFile := filepath.Join(s.opts.DataDir, "vapid-private.key")
	pubFile := filepath.Join(s.opts.DataDir, "vapid-public.key")
	pub, err := os.ReadFile(pubFile)
	if _, kerr := os.Stat(keyFile); err != nil || kerr != nil {
		priv, pubKey, err := webpush.GenerateVAPIDKeys()
		if err != nil {
			return fmt.Errorf("VAPID keys: %w", err)
		}
		if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(pubFile, []byte(pubKey), 0o644); err != nil {
			return err
		}
		pub = []byte(pubKey)
	}
	// The push gateway and the push sink share one listener: the sink is the only Web Push endpoint
	// the gateway may deliver to (plain HTTP on loopback).
	ln, u, err := listen(offPush)
	if err != nil {
		return err
	}
	if s.PushSink, err = loadPushSink(filepath.Join(s.opts.DataDir, "push-sink-key.json")); err != nil {
		ln.Close()
		return fmt.Errorf("push sink: %w", err)
	}
	raw, err := yaml.Marshal(map[string]any{
		"log_level": "warn",
		"queue":     map[string]any{"spool": filepath.Join(s.opts.DataDir, "push-spool.jsonl")},
		"apps": map[string]any{pushAppID: map[string]any{
			"type": "webpush", "vapid_public_key": string(pub), "vapid_private_key_file": keyFile,
			"subscriber": "mailto:ops@" + s.ServerName, "allowed_endpoints": []string{u + sinkPath},
		}},
	})
	if err != nil {
		ln.Close()
		return err
	}
	cfg, err := pushconfig.Parse(raw)
	if err != nil {
		ln.Close()
		return err
	}
	svc, err := service.New(cfg, s.opts.Logger.With("part", "pushgw"))
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(sinkPath, s.PushSink)
	mux.Handle("/", svc.Handler())
	// HTTPS too (certificate of the local CA, which Dendrite trusts): Dendrite accepts only https
	// pusher URLs.
	host := s.opts.Host
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := h.ServerName
		if name == "" {
			name = host
		}
		return s.CA.Leaf(name)
	}}
	s.serve(newTLSOrPlain(ln, tlsCfg), mux)
	s.PushURL = u
	s.pushShutdown = func(ctx context.Context) error {
		_, err := svc.Shutdown(ctx)
		return err
	}
	return nil
}
