package regstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/timfd/fachdienst/control/regtoken"
	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

// LocalSigner returns the key and certificate files of a throw-away C.FD.SIG (BP256R1, a test CA that
// nobody trusts) in dir, creating them on first use: the local run's RegService tokens are signed
// with it. Never a production key.
func LocalSigner(dir string) (keyFile, certFile string, err error) {
	keyFile, certFile = filepath.Join(dir, "cfd-sig.key.pem"), filepath.Join(dir, "cfd-sig.cert.pem")
	_, kerr := os.Stat(keyFile)
	_, cerr := os.Stat(certFile)
	if kerr == nil && cerr == nil {
		return keyFile, certFile, nil
	}
	if !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return "", "", kerr
	}
	p, err := fedlisttest.NewPKI(regtoken.AlgBP256R1, fedlisttest.Options{LeafCommonName: "TEST-ONLY C.FD.SIG (local run)"})
	if err != nil {
		return "", "", fmt.Errorf("regstack: C.FD.SIG: %w", err)
	}
	keyPEM, err := regtoken.MarshalPrivateKeyPEM(p.Leaf.Key)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, p.Leaf.PEM(), 0o644); err != nil {
		return "", "", err
	}
	return keyFile, certFile, nil
}
