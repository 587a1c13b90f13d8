package regstack_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/internal/regstack"
)

func TestStartConfiguresRegistration(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := regstack.Start(context.Background(), regstack.Options{IDPListener: ln, ControlPublicURL: "http://127.0.0.1:1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	cfg := config.Default()
	cfg.VZD.BaseURL = "http://127.0.0.1:2"
	l.Apply(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("registration config: %v", err)
	}
	resp, err := http.Get(l.IDPURL + "/.well-known/openid-configuration")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("IDP discovery: %v %v", resp, err)
	}
	resp.Body.Close()
	if len(l.Endpoints()) != 3 {
		t.Fatalf("endpoints: %v", l.Endpoints())
	}
	if l.Mail != nil && !cfg.Registration.KIM.Enabled {
		t.Fatal("KIM off although Mailpit runs")
	}
}
