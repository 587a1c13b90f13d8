package filter

// Every test of the package, and of filter_test through the native host,
// runs with the memo's audit on: a hit whose input differs from the
// remembered one fails the test that made it.
func init() { memoAudit = true }
