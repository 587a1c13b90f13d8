package filter

import "github.com/timfd/fachdienst/wasm/planvm"

// The JSON the filter writes and reads itself besides policy and list. It
// is written and read with planvm's reflection-free JSON code, the one JSON
// reader of the filter; the output is byte for byte what encoding/json
// writes for the same struct (HTML-safe escapes included).

// errorBody is a Matrix error body.
func errorBody(errcode, msg string) []byte { return twoStrings("errcode", errcode, "error", msg) }

// inviteRequestBody is the invite-permission request to the control plane.
func inviteRequestBody(inviter, invitee string) []byte {
	return twoStrings("inviter", inviter, "invitee", invitee)
}

// twoStrings is the object {k1: v1, k2: v2} of two string members.
func twoStrings(k1, v1, k2, v2 string) []byte {
	b := make([]byte, 0, len(`{"":"","":""}`)+len(k1)+len(v1)+len(k2)+len(v2)+8)
	b = appendString(append(b, '{'), k1)
	b = appendString(append(b, ':'), v1)
	b = appendString(append(b, ','), k2)
	b = appendString(append(b, ':'), v2)
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b, _ = planvm.AppendJSON(b, planvm.String(s)) // a string always encodes
	return b
}

// parseInviteAnswer reads the control plane's {"allow": bool}; answered is
// false when the body is not such an object.
func parseInviteAnswer(b []byte) (allow, answered bool) {
	doc, err := planvm.ParseJSON(b)
	if err != nil {
		return false, false
	}
	v, _ := doc.Get("allow")
	if allow, ok := v.AsBool(); ok {
		return allow, true
	}
	return false, false
}
