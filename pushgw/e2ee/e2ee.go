// Package e2ee encrypts a push payload for one device with the Web Push
// message encryption of RFC 8291 (ECDH P-256 + HKDF-SHA-256 + AES-128-GCM in
// the "aes128gcm" content coding of RFC 8188).
//
// The gateway uses the same scheme for every provider: Web Push carries the
// result as the request body, APNs and FCM carry it base64url-encoded in the
// payload field "enc". The device registers its P-256 public key ("p256dh")
// and a 16-byte authentication secret ("auth") in the pusher's data; only the
// device holds the private key, so the push provider reads nothing but the
// routing token.
package e2ee

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
)

const (
	saltLen    = 16
	authLen    = 16
	pubLen     = 65
	headerLen  = saltLen + 4 + 1 + pubLen
	tagLen     = 16
	maxRecord  = 4096
	delimLast  = 0x02
	infoPrefix = "WebPush: info\x00"
)

// ErrKey reports an unusable device key or auth secret.
var ErrKey = errors.New("e2ee: invalid device key")

// ErrDecrypt reports a body that does not decrypt.
var ErrDecrypt = errors.New("e2ee: message does not decrypt")

// DecodeKey reads a base64 key in any of the encodings clients use
// (URL-safe or standard, padded or not).
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Keys parses and checks a device's registered public key and auth secret.
func Keys(p256dh, auth string) (*ecdh.PublicKey, []byte, error) {
	rawPub, err := DecodeKey(p256dh)
	if err != nil || len(rawPub) != pubLen {
		return nil, nil, ErrKey
	}
	pub, err := ecdh.P256().NewPublicKey(rawPub)
	if err != nil {
		return nil, nil, ErrKey
	}
	secret, err := DecodeKey(auth)
	if err != nil || len(secret) != authLen {
		return nil, nil, ErrKey
	}
	return pub, secret, nil
}

// Encrypt seals plaintext for the device as one aes128gcm record. The
// plaintext is zero-padded to at least padTo bytes so that the ciphertext
// length does not reveal the length of the ids inside.
func Encrypt(plaintext []byte, ua *ecdh.PublicKey, authSecret []byte, padTo int) ([]byte, error) {
	if len(authSecret) != authLen || ua == nil {
		return nil, ErrKey
	}
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return seal(plaintext, ua, authSecret, eph, salt, padTo)
}

func seal(plaintext []byte, ua *ecdh.PublicKey, authSecret []byte, eph *ecdh.PrivateKey, salt []byte, padTo int) ([]byte, error) {
	padded := len(plaintext) + 1
	if padTo > padded {
		padded = padTo
	}
	rs := padded + tagLen
	if headerLen+rs > maxRecord {
		return nil, errors.New("e2ee: payload too large")
	}
	shared, err := eph.ECDH(ua)
	if err != nil {
		return nil, ErrKey
	}
	asPub := eph.PublicKey().Bytes()
	gcm, nonce, err := derive(shared, authSecret, ua.Bytes(), asPub, salt)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, headerLen+rs)
	out = append(out, salt...)
	out = binary.BigEndian.AppendUint32(out, uint32(rs))
	out = append(out, byte(len(asPub)))
	out = append(out, asPub...)
	record := make([]byte, padded)
	copy(record, plaintext)
	record[len(plaintext)] = delimLast
	return gcm.Seal(out, nonce, record, nil), nil
}

// Decrypt opens a body produced by Encrypt (or by any RFC 8291 sender) with
// the device's private key. Clients implement the same steps; the gateway
// uses it only to verify its own output.
func Decrypt(body []byte, ua *ecdh.PrivateKey, authSecret []byte) ([]byte, error) {
	if len(body) < headerLen+tagLen || ua == nil {
		return nil, ErrDecrypt
	}
	salt := body[:saltLen]
	rs := binary.BigEndian.Uint32(body[saltLen : saltLen+4])
	idLen := int(body[saltLen+4])
	if idLen != pubLen || len(body) < saltLen+5+idLen+tagLen {
		return nil, ErrDecrypt
	}
	asPubRaw := body[saltLen+5 : saltLen+5+idLen]
	ct := body[saltLen+5+idLen:]
	if uint32(len(ct)) > rs || rs < tagLen+1 {
		return nil, ErrDecrypt
	}
	asPub, err := ecdh.P256().NewPublicKey(asPubRaw)
	if err != nil {
		return nil, ErrDecrypt
	}
	shared, err := ua.ECDH(asPub)
	if err != nil {
		return nil, ErrDecrypt
	}
	gcm, nonce, err := derive(shared, authSecret, ua.PublicKey().Bytes(), asPubRaw, salt)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != delimLast {
		return nil, ErrDecrypt
	}
	return plain[:len(plain)-1], nil
}

// derive computes the content-encryption key and nonce (RFC 8291 section 3.4,
// RFC 8188 section 2.2).
func derive(shared, authSecret, uaPub, asPub, salt []byte) (cipher.AEAD, []byte, error) {
	info := make([]byte, 0, len(infoPrefix)+2*pubLen)
	info = append(append(append(info, infoPrefix...), uaPub...), asPub...)
	ikm, err := hkdf.Key(sha256.New, shared, authSecret, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return gcm, nonce, nil
}

// PadTo is the plaintext size every sealed notice is padded to: the JSON of a
// notice with Matrix-sized ids stays below it, so all ciphertexts look alike.
const PadTo = 320

// CheckDevice reports whether the pusher data carries a usable key pair
// ("p256dh" and "auth", base64).
func CheckDevice(p256dh, auth string) error {
	_, _, err := Keys(p256dh, auth)
	return err
}

// SealJSON marshals v and encrypts it for the device whose keys are given.
func SealJSON(v any, p256dh, auth string) ([]byte, error) {
	pub, secret, err := Keys(p256dh, auth)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Encrypt(plain, pub, secret, PadTo)
}
