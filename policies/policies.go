// Package policies holds the Rego sources of every decision the Fachdienst
// makes: tim.proxy (evaluated per request by the filter's plan VM) and
// tim.invite (evaluated natively by the control plane), together with the
// default policy data. The control plane embeds FS as its built-in default.
package policies

import "embed"

// FS holds the policy modules, the default data document and the bundle
// manifest (.manifest, its revision), without the
// Rego unit tests. Every non-test .rego file of this directory must be listed
// here; TestFSHoldsEveryPolicy enforces that.
//
//go:embed proxy.rego invite.rego data.json .manifest
var FS embed.FS

// Entrypoints the control plane compiles or evaluates.
const (
	ProxyDecision  = "tim/proxy/decision"
	InviteDecision = "tim/invite/decision"
)
