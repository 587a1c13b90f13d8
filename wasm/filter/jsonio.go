package filter

import "github.com/timfd/fachdienst/wasm/planvm"

// The JSON the filter writes and reads itself besides policy and list. It
// is written and read with planvm's reflection-free JSON code, the one JSON
// reader of the filter; the output is byte for byte what encoding/json
// writes for the same struct (HTML-safe escapes included).

// errorBody is a Matrix error body.
func errorBody(errcode, msg string) []byte {
	b := make([]byte, 0, len(`{"errcode":"","error":""}`)+len(errcode)+len(msg)+8)
	b = append(b, `{"errcode":`...)
	b = appendString(b, errcode)
	b = append(b, `,"error":`...)
	b = appendString(b, msg)
	return append(b, '}')
}

// inviteRequestBody is the invite-permission request to the control plane.
func inviteRequestBody(inviter, invitee string) []byte {
	b := make([]byte, 0, len(`{"inviter":"","invitee":""}`)+len(inviter)+len(invitee)+8)
	b = append(b, `{"inviter":`...)
	b = appendString(b, inviter)
	b = append(b, `,"invitee":`...)
	b = appendString(b, invitee)
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
