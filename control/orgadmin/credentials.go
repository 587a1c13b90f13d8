package orgadmin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"
)

// Password quality (A_23611, BSI IT-Grundschutz ORP.4.A22): the provider's rules, applied wherever
// an Org-Admin sets a password. Long passphrases may do without character classes; shorter
// passwords need at least three classes; trivial and account-derived passwords are refused.
const (
	MinPasswordLen   = 12
	PassphraseLen    = 20
	MaxPasswordBytes = 256
)

// weakFragments are parts of passwords found at the top of every leaked-password list.
var weakFragments = []string{"password", "passwort", "123456", "qwertz", "qwerty", "asdfgh", "letmein", "welcome", "willkommen", "admin", "geheim", "abc123", "iloveyou", "sommer", "winter"}

// PasswordProblems lists every rule the password breaks; none means it is acceptable.
func PasswordProblems(pw, username, telematikID string) []string {
	var out []string
	n := utf8.RuneCountInString(pw)
	if len(pw) > MaxPasswordBytes || !utf8.ValidString(pw) {
		return []string{fmt.Sprintf("The password must be valid text of at most %d bytes.", MaxPasswordBytes)}
	}
	if n < MinPasswordLen {
		out = append(out, fmt.Sprintf("The password must have at least %d characters (it has %d).", MinPasswordLen, n))
	}
	var lower, upper, digit, other bool
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsControl(r):
			return []string{"The password must not contain control characters."}
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	if n < PassphraseLen && classes < 3 {
		out = append(out, fmt.Sprintf("A password shorter than %d characters must use at least three of: lower-case letters, upper-case letters, digits, other characters.", PassphraseLen))
	}
	low := strings.ToLower(pw)
	for _, w := range weakFragments {
		if strings.Contains(low, w) {
			out = append(out, "The password contains a commonly used word or sequence ("+w+").")
			break
		}
	}
	if u := strings.ToLower(strings.TrimSpace(username)); len(u) >= 3 && strings.Contains(low, u) {
		out = append(out, "The password must not contain the username.")
	}
	if t := strings.ToLower(strings.TrimSpace(telematikID)); len(t) >= 3 && strings.Contains(low, t) {
		out = append(out, "The password must not contain the Telematik-ID.")
	}
	if repeats(pw, 4) {
		out = append(out, "The password must not repeat one character four or more times in a row.")
	}
	return out
}

func repeats(s string, k int) bool {
	run, prev := 0, rune(-1)
	for _, r := range s {
		if r == prev {
			run++
		} else {
			run, prev = 1, r
		}
		if run >= k {
			return true
		}
	}
	return false
}

// Argon2id parameters (RFC 9106's second recommendation scaled to a small server: 19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the encoded Argon2id hash of pw.
func HashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummyHash makes a login with an unknown username cost what a known one costs.
var dummyHash = HashPassword("no account has this password 0")

// CheckPassword compares pw with an encoded hash in constant time.
func CheckPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 256*1024 || t > 10 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// TOTP (RFC 6238): 6 digits, 30 s steps, SHA-1 (what authenticator apps implement), one step of
// clock skew either way.
var totpOpts = totp.ValidateOpts{Period: 30, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// NewTOTPKey creates a secret for an account.
func NewTOTPKey(issuer, account string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
}

var errTOTP = errors.New("orgadmin: wrong one-time code")

// CheckTOTP returns the time step whose code matches, or errTOTP. The caller refuses steps not
// newer than the last accepted one, so each code works once.
func CheckTOTP(secret, code string, now time.Time) (int64, error) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, errTOTP
	}
	for _, off := range []int64{0, -1, 1} {
		t := now.Add(time.Duration(off) * 30 * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err != nil {
			return 0, errTOTP
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return t.Unix() / 30, nil
		}
	}
	return 0, errTOTP
}

// TOTPCode computes the code for a time (tests and the stand-in authenticator in local runs).
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totpOpts)
}
