package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/internal/localstack"
	"github.com/timfd/fachdienst/internal/opcli"
	standin "github.com/timfd/fachdienst/standin/vzd"
)

// Operating the policies on a running stack: the control plane serves a policy bundle directory and
// watches it; the proxies fetch every refresh interval. Every change here is a file edit, as an
// operator makes it: nothing is rebuilt or restarted.

const refresh = time.Second

// praxisRule is an operator's edit of proxy.rego: invitations into praxis.example.de are refused.
const (
	createRoomStage1 = "} else := not_invitable(domain) if {\n\tdomain := input.invitees[0].domain\n\tnot federated(domain)\n} else := allowed_default"
	praxisRule       = "} else := not_invitable(domain) if {\n\tdomain := input.invitees[0].domain\n\tnot federated(domain)\n" +
		"} else := not_invitable(domain) if {\n\tdomain := input.invitees[0].domain\n\tdomain == \"praxis.example.de\"\n} else := allowed_default"
)

type opsStack struct {
	*localstack.Stack
	dir  string // the policy directory served
	vzd  *standin.Server
	logs *lineLog
}

// lineLog collects the filters' log lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(role string, _ int, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, role+": "+msg)
	l.mu.Unlock()
}

func (l *lineLog) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

// copyPolicies copies the bundle (.manifest, Rego with tests, data.json) of policies/ into a new
// directory.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("../policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(n == ".manifest" || n == "data.json" || strings.HasSuffix(n, ".rego")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../policies", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startOps(t *testing.T) *opsStack {
	t.Helper()
	// The own domain and kasse.example.de are insurance domains (TI-M ePA).
	vzd, err := localstack.NewVZD(
		standin.Domain{Domain: localstack.DefaultServerName, TelematikID: "8-2-local-own", TimAnbieter: "Local Provider", IsInsurance: true},
		standin.Domain{Domain: "klinik.example.de", TelematikID: "5-2-klinik", TimAnbieter: "Example"},
		standin.Domain{Domain: "praxis.example.de", TelematikID: "1-2-praxis", TimAnbieter: "Example"},
		standin.Domain{Domain: "kasse.example.de", TelematikID: "8-2-kasse", TimAnbieter: "Example", IsInsurance: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	vzdSrv := httptest.NewServer(vzd)
	t.Cleanup(vzdSrv.Close)
	o := &opsStack{dir: copyPolicies(t), vzd: vzd, logs: &lineLog{}}
	o.Stack, err = localstack.Start(context.Background(), localstack.Options{
		DataDir: t.TempDir(), NoPush: true, StandInHomeserver: true, VZD: vzd, VZDURL: vzdSrv.URL,
		PolicyDir: o.dir, PolicyRefresh: refresh, RefetchMinInterval: time.Millisecond,
		FilterLog: o.logs.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := o.Close(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return o
}

func (o *opsStack) status() policyserve.Status { return o.Control.Policy.Status() }

// edit rewrites a policy file in place, as an editor saves it.
func (o *opsStack) edit(t *testing.T, name string, f func(string) string) {
	t.Helper()
	p := filepath.Join(o.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	next := f(string(b))
	if next == string(b) {
		t.Fatalf("%s: the edit changes nothing", name)
	}
	if err := os.WriteFile(p, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitReload waits until the control plane has accepted or refused a reload after before (the counts
// of GET /admin/v1/policy) and returns the new status.
func (o *opsStack) waitReload(t *testing.T, before policyserve.Status) policyserve.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st := o.status()
		if st.Accepted+st.Refused > before.Accepted+before.Refused {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the control plane did not reload after the edit")
	return policyserve.Status{}
}

// ctl runs the operator CLI against the stack with the credentials file the stack wrote.
func (o *opsStack) ctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := func(k string) string {
		if k == opcli.EnvFile {
			return o.OperatorEnvFile()
		}
		return ""
	}
	code := opcli.Main(context.Background(), args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPolicyOperations(t *testing.T) {
	o := startOps(t)
	token := login(t, o.Stack, o.Users[0])
	bob := o.Users[1].MXID
	invite := func(domain string) int { return createRoom(t, o.Stack, token, "@doc:"+domain).status }
	first := o.status()
	if first.Source != "directory "+o.dir || first.Tests == 0 || first.BundleRevision == "" {
		t.Fatalf("status: %+v, want the directory served with its Rego tests run", first)
	}
	if code, out, _ := o.ctl(t, "policy", "status"); code != 0 || !strings.Contains(out, first.Revision) || !strings.Contains(out, "client@127.0.0.1") {
		t.Fatalf("policy status: exit %d\n%s", code, out)
	}

	t.Run("rule edit under traffic", func(t *testing.T) {
		if s := invite("praxis.example.de"); s != 200 {
			t.Fatalf("before the edit: %d", s)
		}
		var (
			mu      sync.Mutex
			counts  = map[int]int{}
			stop    = make(chan struct{})
			done    = make(chan struct{})
			flipped = make(chan struct{})
		)
		go func() { // a bounded loop of requests on loopback
			defer close(done)
			seen403 := false
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := invite("praxis.example.de")
				mu.Lock()
				counts[s]++
				mu.Unlock()
				if s == 403 && !seen403 {
					seen403 = true
					close(flipped)
				}
			}
		}()
		before := o.status()
		o.edit(t, "proxy.rego", func(s string) string { return strings.Replace(s, createRoomStage1, praxisRule, 1) })
		accepted := o.waitReload(t, before)
		if accepted.LastError != "" || accepted.Revision == before.Revision {
			t.Fatalf("edit not accepted: %+v", accepted)
		}
		acceptedAt := time.Now()
		select {
		case <-flipped:
			t.Logf("new rule applied %s after the control plane accepted it (refresh interval %s)", time.Since(acceptedAt).Round(10*time.Millisecond), refresh)
		case <-time.After(30 * time.Second):
			t.Fatal("the new rule never applied")
		case <-done:
			t.Fatal("the request loop ended before the new rule applied")
		}
		// Every worker of the proxy adopts the revision one of them fetched on its next tick.
		eventually(t, "every worker applies the new rule", func() bool {
			for i := 0; i < 2*o.Proxies["client"].Workers(); i++ {
				if invite("praxis.example.de") != 403 {
					return false
				}
			}
			return true
		})
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		for s, n := range counts {
			if s != 200 && s != 403 {
				t.Errorf("%d requests answered %d during the swap", n, s)
			}
		}
		t.Logf("answers during the swap: %v", counts)
		if s := invite("klinik.example.de"); s != 200 {
			t.Errorf("other domains: %d, want 200", s)
		}
	})

	t.Run("broken Rego refused, previous revision keeps deciding", func(t *testing.T) {
		kept := o.status()
		o.edit(t, "proxy.rego", func(s string) string { return s + "\nthis is not rego {\n" })
		st := o.waitReload(t, kept)
		if st.Revision != kept.Revision || !strings.Contains(st.LastError, "proxy.rego") {
			t.Fatalf("broken policy: revision %s (was %s), error %q", st.Revision, kept.Revision, st.LastError)
		}
		if s := invite("praxis.example.de"); s != 403 {
			t.Errorf("the previous revision (praxis refused) must keep deciding: %d", s)
		}
		code, out, _ := o.ctl(t, "policy", "status")
		if code != 0 || !strings.Contains(out, "LAST RELOAD REFUSED") || !strings.Contains(out, "proxy.rego") || !strings.Contains(out, kept.Revision) {
			t.Errorf("policy status shows no refusal: exit %d\n%s", code, out)
		}
		if code, _, errOut := o.ctl(t, "policy", "reload"); code != opcli.ExitRefused || !strings.Contains(errOut, "proxy.rego") {
			t.Errorf("policy reload of a broken policy: exit %d %s", code, errOut)
		}
		if code, _, errOut := o.ctl(t, "policy", "test"); code != opcli.ExitRefused || !strings.Contains(errOut, "proxy.rego") {
			t.Errorf("policy test of a broken policy: exit %d %s", code, errOut)
		}
		before := o.status()
		o.edit(t, "proxy.rego", func(s string) string { return strings.TrimSuffix(s, "\nthis is not rego {\n") })
		if st := o.waitReload(t, before); st.LastError != "" || st.Revision != kept.Revision {
			t.Fatalf("repaired: %+v", st)
		}
	})

	t.Run("failing Rego test refused", func(t *testing.T) {
		kept := o.status()
		o.edit(t, "proxy_test.rego", func(s string) string { return s + "\ntest_operator_expectation if {\n\tfalse\n}\n" })
		st := o.waitReload(t, kept)
		if st.Revision != kept.Revision || !strings.Contains(st.LastError, "test_operator_expectation") {
			t.Fatalf("failing test: revision %s (was %s), error %q", st.Revision, kept.Revision, st.LastError)
		}
		before := o.status()
		o.edit(t, "proxy_test.rego", func(s string) string {
			return strings.TrimSuffix(s, "\ntest_operator_expectation if {\n\tfalse\n}\n")
		})
		if st := o.waitReload(t, before); st.LastError != "" {
			t.Fatalf("repaired: %+v", st)
		}
	})

	t.Run("ePA by data alone", func(t *testing.T) {
		inviter := "@doc:kasse.example.de"
		o.vzd.SetLocation(inviter, "pract")
		o.vzd.SetLocation(bob, "pract")
		if r := federationInvite(t, o.Stack, inviter, bob, 100); r.status != 200 {
			t.Fatalf("TI-M Pro, both in the person directory: %d %s", r.status, r.body)
		}
		before := o.status()
		o.edit(t, "data.json", func(s string) string { return strings.Replace(s, `"variant": "pro"`, `"variant": "epa"`, 1) })
		if st := o.waitReload(t, before); st.LastError != "" {
			t.Fatalf("ePA data refused: %s", st.LastError)
		}
		// The invite policy is evaluated by the control plane: at once. Two insured domains: refused.
		r := federationInvite(t, o.Stack, inviter, bob, 101)
		if r.status != 403 || r.json(t)["errcode"] != "M_FORBIDDEN" {
			t.Fatalf("TI-M ePA, invite between two insured domains: %d %s, want 403", r.status, r.body)
		}
		o.vzd.SetLocation("@doc:klinik.example.de", "pract")
		if r := federationInvite(t, o.Stack, "@doc:klinik.example.de", bob, 103); r.status != 200 {
			t.Fatalf("ePA, inviter not insured, both listed: %d %s", r.status, r.body)
		}
		before = o.status()
		o.edit(t, "data.json", func(s string) string { return strings.Replace(s, `"variant": "epa"`, `"variant": "pro"`, 1) })
		o.waitReload(t, before)
	})

	t.Run("shadow candidate", func(t *testing.T) {
		// In force: praxis refused (the edit above). Candidate: the original rules (praxis allowed)
		// and klinik.example.de refused instead.
		cand := copyPolicies(t)
		b, _ := os.ReadFile(filepath.Join(cand, "proxy.rego"))
		rule := strings.Replace(praxisRule, "praxis.example.de", "klinik.example.de", 1)
		if err := os.WriteFile(filepath.Join(cand, "proxy.rego"), []byte(strings.Replace(string(b), createRoomStage1, rule, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := o.ctl(t, "policy", "shadow", cand)
		if code != 0 {
			t.Fatalf("policy shadow: exit %d %s", code, errOut)
		}
		sh := o.status().Shadow
		if sh == nil || !strings.Contains(out, sh.Revision) {
			t.Fatalf("no candidate after %q", out)
		}
		// Every worker of the client-server proxy evaluates it.
		eventually(t, "every client worker holds the candidate", func() bool {
			return len(o.logs.matching("client: tim-filter: shadow candidate \""+sh.Revision)) >= o.Proxies["client"].Workers()
		})
		// The known set: two requests whose decision differs per domain, others that do not.
		want := 0
		for _, tc := range []struct {
			domain string
			status int
			differ bool
		}{
			{"praxis.example.de", 403, true}, {"klinik.example.de", 200, true}, {"kasse.example.de", 200, false},
			{"praxis.example.de", 403, true}, {"not-federated.example", 403, false}, {"klinik.example.de", 200, true},
		} {
			if s := invite(tc.domain); s != tc.status {
				t.Errorf("%s: %d, want %d (the candidate must not change answers)", tc.domain, s, tc.status)
			}
			if tc.differ {
				want++
			}
		}
		eventually(t, "the proxies report the candidate's counts", func() bool {
			s := o.status().Shadow
			return s != nil && s.Differ >= int64(want) && s.Evaluated >= 6
		})
		lines := o.logs.matching("tim-filter: shadow differs")
		if got := o.status().Shadow.Differ; got != int64(want) || len(lines) != want {
			t.Fatalf("differing decisions: report %d, log lines %d, want %d:\n%s", got, len(lines), want, strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if strings.Contains(l, "example.de") || strings.Contains(l, "@doc") || !strings.Contains(l, "route=createRoom") {
				t.Errorf("log line: %s", l)
			}
		}
		code, out, _ = o.ctl(t, "policy", "shadow")
		if code != 0 || !strings.Contains(out, "decisions that would differ") {
			t.Errorf("shadow report: exit %d\n%s", code, out)
		}
		code, out, _ = o.ctl(t, "--json", "policy", "status")
		var st policyserve.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Shadow == nil || st.Shadow.Differ != int64(want) {
			t.Errorf("policy status --json: exit %d\n%s", code, out)
		}

		if code, _, errOut := o.ctl(t, "policy", "promote"); code != 0 {
			t.Fatalf("promote: exit %d %s", code, errOut)
		}
		if o.status().Revision != sh.Revision {
			t.Fatal("the candidate is not in service after promote")
		}
		eventually(t, "the promoted revision decides", func() bool {
			return invite("klinik.example.de") == 403 && invite("praxis.example.de") == 200
		})
		if code, _, errOut := o.ctl(t, "policy", "promote"); code != opcli.ExitRefused || !strings.Contains(errOut, "no shadow candidate") {
			t.Errorf("promote without candidate: exit %d %s", code, errOut)
		}
		if code, _, _ := o.ctl(t, "policy", "shadow"); code != opcli.ExitRefused {
			t.Errorf("shadow report without candidate: exit %d", code)
		}
		// A reload from the sources replaces the promoted revision.
		if code, _, errOut := o.ctl(t, "policy", "reload"); code != 0 {
			t.Fatalf("reload: exit %d %s", code, errOut)
		}
		eventually(t, "the sources decide again", func() bool { return invite("praxis.example.de") == 403 })

		// A candidate equal to the revision in service is refused; one that is dropped stops.
		if code, _, errOut := o.ctl(t, "policy", "shadow", o.dir); code != opcli.ExitRefused || !strings.Contains(errOut, "in service") {
			t.Errorf("candidate equal to the revision in service: exit %d %s", code, errOut)
		}
		if code, _, _ := o.ctl(t, "policy", "shadow", cand); code != 0 {
			t.Fatal("second candidate")
		}
		if code, _, _ := o.ctl(t, "policy", "shadow", "--drop"); code != 0 || o.status().Shadow != nil {
			t.Fatal("drop")
		}
	})

	t.Run("CLI", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"policy", "test"}, 0, "is the revision in service"},
			{[]string{"federation", "status"}, 0, "list version"},
			{[]string{"federation", "refresh"}, 0, "VZD healthy"},
			{[]string{"vzd", "health"}, 0, "VZD healthy"},
			{[]string{"incidents"}, 0, "no incidents"},
			{[]string{"--json", "incidents"}, 0, `"incidents": []`},
			{[]string{"policy", "frobnicate"}, opcli.ExitUsage, ""},
			{[]string{"policy", "shadow", "/nonexistent"}, opcli.ExitUsage, ""},
			{[]string{"--secret", "wrong", "policy", "status"}, opcli.ExitNoAccess, ""},
			{[]string{"--url", "http://127.0.0.1:1", "policy", "status"}, opcli.ExitNoAccess, ""},
		} {
			code, out, errOut := o.ctl(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("tim-ctl %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.code, out, errOut)
			}
		}
		// Without any settings.
		var out, errOut bytes.Buffer
		if code := opcli.Main(context.Background(), []string{"policy", "status"}, func(string) string { return "" }, &out, &errOut); code != opcli.ExitUsage ||
			!strings.Contains(errOut.String(), opcli.EnvURL) {
			t.Errorf("no settings: exit %d %s", code, errOut.String())
		}
	})
}
