// Command tim-local runs a complete local Fachdienst without Docker or Envoy: the messenger-proxy
// filter (compiled to WebAssembly, hosted by proxyhost) on the client-server, server-server and
// egress listeners, the control plane on SQLite, the push gateway, a real Matrix homeserver
// (Dendrite, a child process; built on the first run) and a STAND-IN for the system outside the
// provider that the stack needs (the gematik VZD-FHIR-Directory).
//
//	go run ./cmd/tim-local [-host 127.0.0.1] [-port 8480] [-data .tim-local] [-policies policies] [-refresh 2s] [-v]
//
// It prints what listens where and a few curl commands, and stops cleanly on Ctrl-C or SIGTERM. The
// control plane serves the policy bundle directory given with -policies and reloads it when a file
// changes; SIGHUP reloads it as well (the process id is in <data>/tim-local.pid).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/timfd/fachdienst/internal/localstack"
	"github.com/timfd/fachdienst/proxyhost"
)

type options struct {
	stack   localstack.Options
	out     io.Writer
	verbose bool
}

func main() {
	var o options
	flag.StringVar(&o.stack.Host, "host", localstack.DefaultHost, "address every listener binds to")
	flag.IntVar(&o.stack.BasePort, "port", localstack.DefaultBasePort, "first of twelve consecutive ports (0: free ports)")
	flag.StringVar(&o.stack.DataDir, "data", ".tim-local", "directory for the SQLite databases (Dendrite's are kept between runs), push spool and keys")
	flag.StringVar(&o.stack.FilterWasm, "wasm", "", "compiled filter (default: $TIM_FILTER_WASM, else built now)")
	flag.BoolVar(&o.verbose, "v", false, "log the control plane and push gateway at info level")
	flag.StringVar(&o.stack.PolicyDir, "policies", defaultPolicyDir(), "policy bundle directory served and watched (\"\": the policies built in)")
	flag.DurationVar(&o.stack.PolicyRefresh, "refresh", 2*time.Second, "how often the proxies fetch policy and federation list")
	flag.Parse()
	o.out = os.Stdout
	o.stack.BuildDendrite, o.stack.Progress = true, os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, nil); err != nil {
		fmt.Fprintln(os.Stderr, "tim-local:", err)
		os.Exit(1)
	}
}

// run starts the stack, prints the overview, calls ready (when not nil) and serves until ctx ends;
// then it shuts everything down and returns what went wrong on the way, nil for a clean stop.
func run(ctx context.Context, o options, ready func(*localstack.Stack)) error {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.stack.Logger = logger
	if o.stack.FilterLog == nil {
		// Denials are logged at warn, one line each, identifiers hashed by the filter.
		o.stack.FilterLog = func(role string, lvl int, msg string) {
			if lvl >= proxyhost.LogWarn || o.verbose {
				logger.Warn(msg, "proxy", role)
			}
		}
	}
	st, err := localstack.Start(ctx, o.stack)
	if err != nil {
		return err
	}
	// SIGHUP reloads the policy; it no longer ends the stack.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	pidFile := filepath.Join(o.stack.DataDir, "tim-local.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		logger.Warn("pid file not written", "error", err.Error())
	}
	defer os.Remove(pidFile)
	printOverview(o.out, st)
	if ready != nil {
		ready(st)
	}
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			waiting = false
		case <-hup:
			if err := st.ReloadPolicy(ctx); err != nil {
				fmt.Fprintf(o.out, "tim-local: SIGHUP: policy refused, the previous revision stays: %v\n", err)
			} else {
				fmt.Fprintf(o.out, "tim-local: SIGHUP: policy revision %s in service\n", st.Control.Policy.Current().Revision)
			}
		}
	}
	fmt.Fprintln(o.out, "tim-local: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(o.out, "tim-local: stopped")
	return nil
}

func printOverview(w io.Writer, st *localstack.Stack) {
	fmt.Fprintf(w, "\nTI-Messenger Fachdienst, local run (homeserver domain %s)\n\n", st.ServerName)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tURL\tKIND\tWHAT")
	for _, e := range st.Endpoints {
		kind := "Fachdienst"
		if e.StandIn {
			kind = "STAND-IN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.URL, kind, e.Note)
	}
	tw.Flush()
	if st.PushError != nil {
		fmt.Fprintf(w, "\npush gateway: not started: %v\n", st.PushError)
	}
	if st.Dendrite != nil {
		fmt.Fprintf(w, "\nThe homeserver is a real Dendrite %s; users and rooms stay in the data folder between runs.\n", localstack.DendriteVersion)
		fmt.Fprintf(w, "Any Matrix client pointed at the client-server proxy can log in (its User-Agent must end in\n")
		fmt.Fprintf(w, "\",%s\"). The STAND-INs are the VZD (it signs with a throw-away test CA and starts anew each run),\nthe IDP of the SMC-B sign-in and the mail sink.\n\n", localstack.ApprovedClientID)
	} else {
		fmt.Fprintf(w, "\nStand-ins are not the real systems: the VZD stand-in signs with a throw-away test CA, the\n")
		fmt.Fprintf(w, "homeserver stand-in keeps users and rooms in memory. Both start empty on every run.\n\n")
	}
	fmt.Fprintf(w, "Demo users:\n")
	for _, u := range st.Users {
		fmt.Fprintf(w, "  %-28s password %s\n", u.MXID, u.Password)
	}
	fmt.Fprintf(w, "Approved client id: %s (last comma field of User-Agent)\n", localstack.ApprovedClientID)
	fmt.Fprintf(w, "Federated domains: %s", st.ServerName)
	for _, d := range localstack.ExampleDomains {
		fmt.Fprintf(w, ", %s", d.Domain)
	}
	fmt.Fprintf(w, "\n\nTry (the first command sets TOKEN for the createRoom examples):\n\n")
	for _, ex := range examples(st) {
		fmt.Fprintf(w, "# %s -> %d\n%s\n\n", ex.title, ex.status, ex.curl())
	}
	printOperator(w, st)
	fmt.Fprintln(w, "Ctrl-C stops everything.")
}

// example is one request of the printed walk-through; the test performs each and checks status
// and body, so the printout cannot drift from what the stack does.
type example struct {
	title   string
	method  string
	url     string
	proxy   string // forward proxy (curl -x), for the egress listener
	cacert  string // CA file the client trusts (curl --cacert), for tunnels through the egress listener
	headers [][2]string
	body    string
	auth    bool // sends the access token of the login example
	setsTok bool // its answer carries the access token
	status  int
	want    string // a substring of the answer's body
}

func examples(st *localstack.Stack) []example {
	ua := [2]string{"User-Agent", "demo/1.0," + localstack.ApprovedClientID}
	alice := st.Users[0]
	local := strings.TrimPrefix(strings.SplitN(alice.MXID, ":", 2)[0], "@")
	login := fmt.Sprintf(`{"type":"m.login.password","identifier":{"type":"m.id.user","user":%q},"password":%q}`, local, alice.Password)
	fed := localstack.ExampleDomains[0].Domain
	bad := localstack.UnfederatedDomain
	return []example{
		{title: "allowed: login through the client-server proxy with an approved client id",
			method: "POST", url: st.ClientURL + "/_matrix/client/v3/login", headers: [][2]string{ua}, body: login,
			setsTok: true, status: 200, want: `"access_token"`},
		{title: "denied: login with a client id that is not approved",
			method: "POST", url: st.ClientURL + "/_matrix/client/v3/login", headers: [][2]string{{"User-Agent", "demo/1.0,unknown-client"}}, body: login,
			status: 401, want: `"M_FORBIDDEN"`},
		{title: "allowed: createRoom inviting a user of the own domain",
			method: "POST", url: st.ClientURL + "/_matrix/client/v3/createRoom", headers: [][2]string{ua}, auth: true,
			body: `{"invite":["` + st.Users[1].MXID + `"]}`, status: 200, want: `"room_id"`},
		{title: "allowed by the filter: createRoom inviting a user of a federated domain; Dendrite sends the invite through\n" +
			"# the egress proxy, and as " + fed + " exists only in the VZD stand-in, it reports the other party unreachable",
			method: "POST", url: st.ClientURL + "/_matrix/client/v3/createRoom", headers: [][2]string{ua}, auth: true,
			body: `{"invite":["@doc:` + fed + `"]}`, status: 403, want: `could not be reached`},
		{title: "denied: createRoom inviting a user of a domain outside the federation",
			method: "POST", url: st.ClientURL + "/_matrix/client/v3/createRoom", headers: [][2]string{ua}, auth: true,
			body: `{"invite":["@doc:` + bad + `"]}`, status: 403, want: bad + ` could not be invited`},
		{title: "denied: server-server request from a server outside the federation",
			method: "GET", url: st.FederationURL + "/_matrix/federation/v1/query/profile?user_id=" + alice.MXID,
			headers: [][2]string{{"Authorization", `X-Matrix origin="` + bad + `",destination="` + st.ServerName + `",key="ed25519:1",sig="c2ln"`}},
			status:  403, want: `The other party could not be contacted`},
		{title: "the messenger service's client discovery (/.well-known/matrix/client)",
			method: "GET", url: st.ClientURL + "/.well-known/matrix/client", headers: [][2]string{ua},
			status: 200, want: `"m.homeserver"`},
		{title: "allowed: the homeserver's egress to a federated (here: its own) domain, through a CONNECT tunnel as Dendrite sends it",
			method: "GET", url: "https://" + st.ServerName + "/_matrix/federation/v1/version", proxy: st.EgressURL, cacert: st.CACertFile(),
			status: 200, want: `"server"`},
		{title: "allowed: the homeserver's egress to a federated (here: its own) domain, as a plain forward-proxy request",
			method: "GET", url: "http://" + st.ServerName + "/_matrix/federation/v1/version", proxy: st.EgressURL,
			status: 200, want: `"server"`},
		{title: "denied: the homeserver's egress to a domain outside the federation",
			method: "GET", url: "http://" + bad + "/_matrix/federation/v1/version", proxy: st.EgressURL,
			status: 403, want: `The other party could not be contacted`},
	}
}

func (ex example) curl() string {
	var b strings.Builder
	if ex.setsTok {
		b.WriteString("TOKEN=$(")
	}
	b.WriteString("curl -s")
	if !ex.setsTok {
		b.WriteString(" -w '\\n%{http_code}\\n'")
	}
	if ex.proxy != "" {
		b.WriteString(" -x " + ex.proxy)
	}
	if ex.cacert != "" {
		b.WriteString(" --cacert " + shellQuote(ex.cacert))
	}
	if ex.method != "GET" {
		b.WriteString(" -X " + ex.method)
	}
	for _, h := range ex.headers {
		b.WriteString(" -H " + shellQuote(h[0]+": "+h[1]))
	}
	if ex.auth {
		b.WriteString(` -H "Authorization: Bearer $TOKEN"`)
	}
	if ex.body != "" {
		b.WriteString(" -d " + shellQuote(ex.body))
	}
	b.WriteString(" " + shellQuote(ex.url))
	if ex.setsTok {
		b.WriteString(` | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); echo "TOKEN=$TOKEN"`)
	}
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
