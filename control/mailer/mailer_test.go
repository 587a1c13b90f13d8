package mailer_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/control/mailer"
	"github.com/timfd/fachdienst/internal/mailpit"
)

func TestSendThroughSMTP(t *testing.T) {
	bin, err := mailpit.Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	sink, err := mailpit.Start(context.Background(), bin, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	s, err := mailer.New(mailer.Config{Host: sink.SMTPHost, Port: sink.SMTPPort, From: "reg@fd.example", TLS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Send(ctx, "org@kim.example", "Betreff äöü", "Zeile 1\nZeile 2\n", map[string]string{"X-KIM-serviceindicator": "Auth;Verification;V1.0"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := sink.Messages(ctx, "org@kim.example")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages = %v, %v", msgs, err)
	}
	m := msgs[0]
	if m.Subject != "Betreff äöü" || !strings.Contains(m.Text, "Zeile 2") || !strings.Contains(m.Raw, "\r\nX-KIM-serviceindicator: Auth;Verification;V1.0\r\n") {
		t.Fatalf("message = %+v", m)
	}
	// Header injection and bad recipients are refused before anything is sent.
	for _, c := range []struct {
		to      string
		headers map[string]string
	}{
		{"org@kim.example", map[string]string{"X-A": "v\r\nBcc: x@evil.example"}},
		{"not an address", nil},
	} {
		if err := s.Send(ctx, c.to, "s", "t", c.headers); err == nil {
			t.Fatalf("sent with %q %v", c.to, c.headers)
		}
	}
	if _, err := mailer.New(mailer.Config{Host: "h", From: "f@x", TLS: "sometimes"}); err == nil {
		t.Fatal("unknown tls mode accepted")
	}
}
