// Package mailpit runs Mailpit (github.com/axllent/mailpit), an SMTP sink with an inbox that can be
// read over HTTP, as a child process for tests and local runs. Mailpit cannot be linked in (its
// SMTP server is an internal package), so its binary is built with `go install` into build/bin,
// outside this module's dependency graph (make mailpit).
package mailpit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Version is the Mailpit release built by `make mailpit`.
const Version = "v1.33.1"

// Binary finds the mailpit executable: $TIM_MAILPIT, build/bin/mailpit above the working
// directory, or mailpit on PATH.
func Binary() (string, error) {
	if p := os.Getenv("TIM_MAILPIT"); p != "" {
		return p, nil
	}
	dir, _ := os.Getwd()
	for dir != "" {
		p := filepath.Join(dir, "build", "bin", "mailpit")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	return "", errors.New("mailpit: binary not found; run `make mailpit` (go install github.com/axllent/mailpit@" + Version + " into build/bin)")
}

// Sink is a running Mailpit.
type Sink struct {
	SMTPHost string
	SMTPPort int
	WebURL   string // inbox UI and API
	cmd      *exec.Cmd
	done     chan struct{}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs Mailpit on loopback (free ports unless given) with an in-memory inbox and waits until
// it answers.
func Start(ctx context.Context, bin string, smtpPort, webPort int) (*Sink, error) {
	var err error
	if smtpPort == 0 {
		if smtpPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	if webPort == 0 {
		if webPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Sink{SMTPHost: "127.0.0.1", SMTPPort: smtpPort, WebURL: fmt.Sprintf("http://127.0.0.1:%d", webPort), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "--quiet", "--disable-version-check", "--smtp-disable-rdns", "--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--smtp", "127.0.0.1:"+strconv.Itoa(smtpPort), "--listen", "127.0.0.1:"+strconv.Itoa(webPort))
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	orphanGuard(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("mailpit: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.WebURL + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", smtpPort), time.Second); err == nil {
					c.Close()
					return s, nil
				}
			}
		}
		select {
		case <-s.done:
			return nil, errors.New("mailpit: exited during start")
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("mailpit: did not answer within 20s")
		}
	}
}

// Stop ends the process.
func (s *Sink) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// Message is a received mail.
type Message struct {
	ID      string
	To      []string
	Subject string
	Text    string
	Headers map[string][]string
	Raw     string // the message as received
}

func (s *Sink) getJSON(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.WebURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit: %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Messages returns every mail to the address (newest first), with text and headers.
func (s *Sink) Messages(ctx context.Context, to string) ([]Message, error) {
	var list struct {
		Messages []struct {
			ID string `json:"ID"`
		} `json:"messages"`
	}
	if err := s.getJSON(ctx, "/api/v1/search?query="+url.QueryEscape("to:"+to), &list); err != nil {
		return nil, err
	}
	var out []Message
	for _, m := range list.Messages {
		var full struct {
			ID      string `json:"ID"`
			Subject string `json:"Subject"`
			Text    string `json:"Text"`
			To      []struct {
				Address string `json:"Address"`
			} `json:"To"`
		}
		if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(m.ID), &full); err != nil {
			return nil, err
		}
		msg := Message{ID: full.ID, Subject: full.Subject, Text: full.Text}
		for _, a := range full.To {
			msg.To = append(msg.To, a.Address)
		}
		if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(m.ID)+"/headers", &msg.Headers); err != nil {
			return nil, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.WebURL+"/api/v1/message/"+url.PathEscape(m.ID)+"/raw", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		msg.Raw = string(raw)
		out = append(out, msg)
	}
	return out, nil
}
