package providertest

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"github.com/timfd/fachdienst/pushgw/e2ee"
	"github.com/timfd/fachdienst/pushgw/push"
)

// DeviceKeys is a device's push encryption key pair and auth secret, as an
// app would generate and register them in its pusher data.
type DeviceKeys struct {
	Private *ecdh.PrivateKey
	Auth    []byte
}

// NewDeviceKeys generates a key pair.
func NewDeviceKeys() DeviceKeys {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return DeviceKeys{Private: k, Auth: auth}
}

// P256dh is the public key as registered (base64url, no padding).
func (k DeviceKeys) P256dh() string {
	return base64.RawURLEncoding.EncodeToString(k.Private.PublicKey().Bytes())
}

// AuthString is the auth secret as registered.
func (k DeviceKeys) AuthString() string { return base64.RawURLEncoding.EncodeToString(k.Auth) }

// Data is the pusher data for APNs and FCM devices.
func (k DeviceKeys) Data() map[string]any {
	return map[string]any{"p256dh": k.P256dh(), "auth": k.AuthString()}
}

// Open decrypts a base64url "enc" field or a raw body and decodes the JSON.
func (k DeviceKeys) Open(body []byte, v any) error {
	plain, err := e2ee.Decrypt(body, k.Private, k.Auth)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, v)
}

// OpenEnc decodes and decrypts a base64url "enc" field.
func (k DeviceKeys) OpenEnc(enc string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return err
	}
	return k.Open(raw, v)
}

// Device is an APNs or FCM device with these keys in its pusher data.
func (k DeviceKeys) Device(appID, pushKey string) push.Device {
	return push.Device{AppID: appID, PushKey: pushKey, Data: map[string]json.RawMessage{
		"p256dh": quote(k.P256dh()), "auth": quote(k.AuthString()),
	}}
}

// WebDevice is a Web Push device: the pushkey is the p256dh key.
func (k DeviceKeys) WebDevice(appID, endpoint string) push.Device {
	return push.Device{AppID: appID, PushKey: k.P256dh(), Data: map[string]json.RawMessage{
		"endpoint": quote(endpoint), "auth": quote(k.AuthString()),
	}}
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
