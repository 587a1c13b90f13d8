// Package e2e holds the end-to-end tests: they drive the whole Fachdienst over real HTTP on loopback.
//
// federation_test.go: two organisations, each a real Dendrite (a child process, built by `make
// dendrite`) behind its own client-server, server-server and egress proxies running the compiled
// tim-filter.wasm in proxyhost, each with its own control plane, sharing the VZD stand-in; two more
// Dendrites outside the federation. A real Matrix client library (mautrix) acts as the users, and
// every scenario is checked on what the homeservers hold afterwards. Without Dendrite it skips, and
// fails when CI=true.
//
// registration_test.go: the registration service against a real Dendrite: onboarding through the
// Org-Admin API, the operator's approval, blocking and unblocking a user (homeserver and proxies), the
// RegService token verified by hand, no access across organisations.
//
// boundary_test.go: on the same federation, a third organisation whose server name is delegated by
// its well-known to another host (reached through A's egress), a stack of an insurance's messenger
// under the ePA variant, and the bypasses B1–B9 of docs/decisions/filter.md, each refused by the
// proxy itself with nothing changed on the homeservers.
//
// e2e_test.go: one stack in front of the homeserver stand-in (standin/homeserver says why).
//
//	go test ./e2e/   (uses $TIM_FILTER_WASM, else builds the filter first)
package e2e
