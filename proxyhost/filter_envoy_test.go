package proxyhost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/timfd/fachdienst/control/policyserve"
	"github.com/timfd/fachdienst/proxyhost"
)

// TestFilterBodyRoutesUnderEnvoyRules runs the compiled filter on a body
// route with Envoy's rules (docs/decisions/envoy.md E1): the headers go on,
// the body waits in the filter until its end, the upstream gets the whole
// body of an allowed request and none of a refused one, whose local reply
// resets the upstream request.
func TestFilterBodyRoutesUnderEnvoyRules(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t, policyserve.Operator{ApprovedClientIDs: []string{"tim-client-1.0"}}, "example.de")
	wasm, jws, policyDoc := fx.wasm, fx.jws, fx.policyDoc
	cfg, _ := json.Marshal(map[string]any{
		"role":          "client",
		"control_plane": map[string]any{"cluster": "control", "authority": "control", "credential_header": "x-secret", "credential": "s"},
		"trust_anchors": fx.rootPEM,
	})
	rt, err := proxyhost.NewRuntime(ctx, wasm, proxyhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	vm, err := rt.NewVM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := vm.StartPlugin(cfg); err != nil || !ok {
		t.Fatalf("start: %v %v", err, vm.Logs(proxyhost.LogCritical))
	}
	// answer serves the control plane: the policy and the list.
	answer := func() {
		for _, c := range vm.PendingCallouts() {
			body := policyDoc
			if strings.HasPrefix(c.Header(":path"), "/internal/v1/federation-list") {
				body = jws
			}
			if err := vm.RespondCallout(c.ID, [][2]string{{":status", "200"}}, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	answer()

	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, c := range []struct {
		name   string
		chunks []string
		local  int    // 0: let through
		errors string // in the refusal
	}{
		{"federated invitee", []string{`{"invite":[`, `"@a:example.de"]}`}, 0, ""},
		{"invitee outside the federation", []string{`{"invite":[`, `"@a:evil.de"]}`}, 403, "evil.de could not be invited"},
		{"not JSON", []string{`{"invite":`, `[`}, 400, "M_NOT_JSON"},
		{"over the filter's max_body_bytes, under Envoy's limit", []string{big[:40<<10], big[40<<10:]}, 413, "M_TOO_LARGE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := vm.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Done(s)
			h := [][2]string{{":method", "POST"}, {":path", "/_matrix/client/v3/createRoom"}, {":authority", "tim.example.de"}, {"user-agent", "App/1,tim-client-1.0"}}
			if _, err := vm.RequestHeaders(s, h, false); err != nil {
				t.Fatal(err)
			}
			if s.Headers != proxyhost.HeadersContinue || !s.Upstream.Headers {
				t.Fatalf("headers: status %d, upstream has them %v; want them passed on", s.Headers, s.Upstream.Headers)
			}
			for i, ch := range c.chunks {
				if _, err := vm.RequestBody(s, []byte(ch), i == len(c.chunks)-1); err != nil {
					t.Fatal(err)
				}
				if i < len(c.chunks)-1 && len(s.Upstream.Body) > 0 {
					t.Fatalf("upstream got %d body bytes before the decision", len(s.Upstream.Body))
				}
			}
			// A refusal for a domain missing from the list waits for a refetch of the list.
			answer()
			if s.BodyCalls != len(c.chunks) {
				t.Errorf("body callbacks = %d, want %d", s.BodyCalls, len(c.chunks))
			}
			if c.local == 0 {
				if s.Local != nil || string(s.Upstream.Body) != strings.Join(c.chunks, "") || !s.Upstream.End || s.Upstream.Reset {
					t.Errorf("allowed: local %+v, upstream %+v", s.Local, s.Upstream)
				}
				return
			}
			if s.Local == nil || s.Local.Status != c.local || s.Local.ByHost || !strings.Contains(string(s.Local.Body), c.errors) {
				t.Fatalf("refused: local %+v, want the filter's %d", s.Local, c.local)
			}
			if len(s.Upstream.Body) != 0 || !s.Upstream.Reset {
				t.Errorf("refused: upstream got %d body bytes, reset %v; want none and reset", len(s.Upstream.Body), s.Upstream.Reset)
			}
		})
	}
}
