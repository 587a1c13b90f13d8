package regtoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
)

// BP256R1 is registered with jwx by internal/brainpooljws (imported in regtoken.go).

func curveOfKey(k *ecdsa.PrivateKey) (elliptic.Curve, string, error) {
	oid, err := oidOf(k.Curve)
	if err != nil {
		return nil, "", err
	}
	return curveOf(oid)
}
