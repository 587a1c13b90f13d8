package localstack

import (
	"context"
	"fmt"
	"net"
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
	raw, err := yaml.Marshal(map[string]any{
		"log_level": "warn",
		"queue":     map[string]any{"spool": filepath.Join(s.opts.DataDir, "push-spool.jsonl")},
		"apps": map[string]any{pushAppID: map[string]any{
			"type": "webpush", "vapid_public_key": string(pub), "vapid_private_key_file": keyFile,
			"subscriber": "mailto:ops@" + s.ServerName,
		}},
	})
	if err != nil {
		return err
	}
	cfg, err := pushconfig.Parse(raw)
	if err != nil {
		return err
	}
	svc, err := service.New(cfg, s.opts.Logger.With("part", "pushgw"))
	if err != nil {
		return err
	}
	ln, u, err := listen(offPush)
	if err != nil {
		svc.Shutdown(context.Background())
		return err
	}
	s.serve(ln, svc.Handler())
	s.PushURL = u
	s.pushShutdown = func(ctx context.Context) error {
		_, err := svc.Shutdown(ctx)
		return err
	}
	return nil
}
