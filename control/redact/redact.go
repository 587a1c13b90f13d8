// Package redact turns personal identifiers into stable, non-reversible tags for logs and metrics.
//
// Logs must not carry MXIDs, tokens or Telematik-IDs in clear; a short SHA-256 prefix still lets an
// operator correlate log lines of one user without learning who it is.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
)

// ID returns the first 12 hex digits of the SHA-256 of s ("" for an empty s).
func ID(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
