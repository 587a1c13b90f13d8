// Package fedlist verifies and parses the federation list of the
// VZD-FHIR-Directory: a compact JWS (RFC 7515) signed with BP256R1
// (ECDSA on brainpoolP256r1 with SHA-256, the VZD's default) or ES256, whose
// x5c header carries the signer certificate (and optionally intermediates)
// that must chain to a configured trust anchor of the TI.
//
// Go's crypto/x509 does not accept brainpool keys, so certificates are read
// by a small DER parser (golang.org/x/crypto/cryptobyte) that extracts only
// what the chain check needs: names, validity, key, signature, basic
// constraints and key usage.
//
// JSON (the JWS header and the list payload) is read with planvm's
// reflection-free reader, the one JSON reader of the filter module; the
// payload's domainList entry by entry (planvm.ParseJSONEach), so that a
// large list is never held as a parsed tree.
//
// The VZD's x5c carries only the signer certificate; its issuer, a Komp-CA
// of the TI, belongs into the trust bundle beside the TI root (see
// TrustStore).
//
// API:
//
//	ParsePayload(b []byte) (*List, error)
//	NewTrustStore(pemBundle []byte) (*TrustStore, error)
//	Verify(compactJWS []byte, ts *TrustStore, now time.Time) (*List, error)
//	ParseUnverified(compactJWS []byte) (Header, *List, error)
//
// Errors (test with errors.Is): ErrMalformed, ErrUnsupportedAlg,
// ErrBadSignature, ErrUntrustedChain, ErrCertExpired (also for a certificate
// not yet valid).
//
// The subpackage fedlisttest builds test CAs for both curves and signs lists
// the way the VZD does; it is used by tests and by the VZD stand-in.
package fedlist
