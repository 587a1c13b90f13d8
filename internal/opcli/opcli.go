// Package opcli is the operator's command line (cmd/tim-ctl): the policy in service, its tests, reloads
// and shadow candidates, the federation list and the VZD, all through the control plane's admin API on
// its internal listener, authenticated with the internal shared secret.
//
// Exit codes: 0 done; 1 the control plane refused or reports a failure (the reason is printed);
// 2 usage or missing settings; 3 the control plane could not be reached or refused the credential.
package opcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitRefused  = 1
	ExitUsage    = 2
	ExitNoAccess = 3
)

// Environment variables the settings fall back to.
const (
	EnvURL        = "TIM_ADMIN_URL"
	EnvSecret     = "TIM_ADMIN_SECRET"
	EnvSecretFile = "TIM_ADMIN_SECRET_FILE"
	EnvFile       = "TIM_ADMIN_ENV_FILE"
)

// exitError carries an exit code with its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, a ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, a...)}
}

// client is the admin API as the commands see it.
type client struct {
	url, secret string
	http        *http.Client
	json        bool
	out         io.Writer
}

// Main runs the command line with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	c := &client{out: stdout, http: &http.Client{Timeout: 60 * time.Second}}
	var urlFlag, secretFlag, secretFile, envFile string
	root := &cobra.Command{
		Use:           "tim-ctl",
		Short:         "Operate a TI-Messenger Fachdienst's control plane: policy, federation list, VZD",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			settings := map[string]string{}
			if envFile == "" {
				envFile = env(EnvFile)
			}
			if envFile != "" {
				var err error
				if settings, err = readEnvFile(envFile); err != nil {
					return fail(ExitUsage, "%v", err)
				}
			}
			pick := func(flag, name string) string {
				if flag != "" {
					return flag
				}
				if v := env(name); v != "" {
					return v
				}
				return settings[name]
			}
			c.url = strings.TrimRight(pick(urlFlag, EnvURL), "/")
			c.secret = pick(secretFlag, EnvSecret)
			if f := pick(secretFile, EnvSecretFile); c.secret == "" && f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return fail(ExitUsage, "secret file: %v", err)
				}
				c.secret = strings.TrimSpace(string(b))
			}
			if c.url == "" {
				return fail(ExitUsage, "no control plane: give --url or %s (the internal listener, e.g. http://127.0.0.1:8484)", EnvURL)
			}
			if c.secret == "" {
				return fail(ExitUsage, "no credential: give --secret-file, %s, %s or an --env-file that sets one", EnvSecretFile, EnvSecret)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&urlFlag, "url", "", "control plane's internal listener (env "+EnvURL+")")
	pf.StringVar(&secretFlag, "secret", "", "internal shared secret (env "+EnvSecret+"; prefer --secret-file)")
	pf.StringVar(&secretFile, "secret-file", "", "file holding the internal shared secret (env "+EnvSecretFile+")")
	pf.StringVar(&envFile, "env-file", "", "KEY=VALUE file with the settings above, e.g. .tim-local/operator.env (env "+EnvFile+")")
	pf.BoolVar(&c.json, "json", false, "print the control plane's JSON answer")
	root.AddCommand(c.policyCmd(), c.federationCmd(), c.vzdCmd(), c.incidentsCmd())
	for _, group := range root.Commands() {
		if group.HasSubCommands() {
			// A group without a known subcommand is a usage error, not help with exit 0.
			group.Args = cobra.NoArgs
			group.RunE = func(cmd *cobra.Command, _ []string) error {
				return fail(ExitUsage, "%s needs a subcommand; see %s --help", cmd.CommandPath(), cmd.CommandPath())
			}
		}
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "tim-ctl:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitUsage // cobra's own errors: unknown command or flag, wrong arguments
}

// readEnvFile reads KEY=VALUE lines (# comments, optional "export ", optional quotes).
func readEnvFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `'"`)
	}
	return out, sc.Err()
}

// call sends a request and decodes a JSON answer into out (when not nil). It returns the status and
// the raw answer; a status of 400 and above is an error with the control plane's message.
func (c *client) call(ctx context.Context, method, path string, body io.Reader, contentType string, out any) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return nil, fail(ExitUsage, "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fail(ExitNoAccess, "control plane not reachable at %s: %v", c.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fail(ExitNoAccess, "reading the answer: %v", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return raw, fail(ExitNoAccess, "the control plane refused the credential (401); check the secret")
	case resp.StatusCode == http.StatusNotFound && !json.Valid(raw):
		return raw, fail(ExitNoAccess, "%s %s: 404; is %s the control plane's internal listener?", method, path, c.url)
	case resp.StatusCode >= 400:
		var e struct {
			Error string `json:"error"`
			Cause string `json:"cause"`
		}
		_ = json.Unmarshal(raw, &e)
		msg := e.Error
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		if e.Cause != "" {
			msg += " (cause: " + e.Cause + ")"
		}
		return raw, &exitError{code: ExitRefused, msg: fmt.Sprintf("%s (HTTP %d)", msg, resp.StatusCode)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fail(ExitNoAccess, "unexpected answer from %s: %v", path, err)
		}
	}
	return raw, nil
}

// printJSON writes the answer as it came, indented.
func (c *client) printJSON(raw []byte) {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		b.Reset()
		b.Write(raw)
	}
	fmt.Fprintln(c.out, b.String())
}

// jsonOr prints raw with --json, else runs table; an error answer is printed as JSON too.
func (c *client) jsonOr(raw []byte, err error, table func()) error {
	if c.json && raw != nil {
		c.printJSON(raw)
	} else if err == nil {
		table()
	}
	return err
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339) + " (" + time.Since(t).Round(time.Second).String() + " ago)"
}

func jsonUnmarshal(raw []byte, v any) error {
	if len(raw) == 0 {
		return errors.New("empty")
	}
	return json.Unmarshal(raw, v)
}
