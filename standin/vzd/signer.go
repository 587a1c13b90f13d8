package vzd

import (
	"bytes"
	"fmt"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

// testSigner holds one test PKI per algorithm, so that sigAlg=ES256 and sigAlg=BP256R1 are both served.
type testSigner struct {
	pkis map[string]*fedlisttest.PKI
	pem  []byte
}

// NewTestSigner creates a TEST-ONLY root CA and list signer for BP256R1 and for ES256. Its trust anchor
// PEM holds both roots.
func NewTestSigner() (Signer, error) {
	s := &testSigner{pkis: map[string]*fedlisttest.PKI{}}
	var pem bytes.Buffer
	for _, alg := range []string{fedlisttest.AlgBP256R1, fedlisttest.AlgES256} {
		p, err := fedlisttest.NewPKI(alg, fedlisttest.Options{WithIntermediate: true})
		if err != nil {
			return nil, err
		}
		s.pkis[alg] = p
		pem.Write(p.RootPEM())
	}
	s.pem = pem.Bytes()
	return s, nil
}

func (s *testSigner) Sign(payload []byte, alg string) ([]byte, error) {
	p, ok := s.pkis[alg]
	if !ok {
		return nil, fmt.Errorf("unsupported alg %q", alg)
	}
	return p.Sign(payload)
}

func (s *testSigner) TrustAnchorPEM() []byte { return bytes.Clone(s.pem) }
