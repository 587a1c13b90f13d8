package fedlist

import (
	"math/big"
	"testing"

	"github.com/ProtonMail/go-crypto/brainpool"
)

func hexInt(t *testing.T, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return n
}

// TestBrainpoolDomainParameters pins the curve to RFC 5639 3.4.
func TestBrainpoolDomainParameters(t *testing.T) {
	p := brainpool.P256r1().Params()
	for _, c := range []struct {
		name      string
		got, want *big.Int
	}{
		{"p", p.P, hexInt(t, "A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377")},
		{"n", p.N, hexInt(t, "A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7")},
		{"Gx", p.Gx, hexInt(t, "8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262")},
		{"Gy", p.Gy, hexInt(t, "547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997")},
	} {
		if c.got.Cmp(c.want) != 0 {
			t.Errorf("%s = %X, want %X", c.name, c.got, c.want)
		}
	}
	if p.BitSize != 256 {
		t.Errorf("BitSize = %d", p.BitSize)
	}
}

// TestBrainpoolRFC7027 checks the point arithmetic with the ECDH test vector
// of RFC 7027 A.1: both public keys from their scalars, the shared point from
// both sides, and n·G at infinity.
func TestBrainpoolRFC7027(t *testing.T) {
	c := brainpool.P256r1()
	dA := hexInt(t, "81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D")
	qAx := hexInt(t, "44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5")
	qAy := hexInt(t, "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC")
	dB := hexInt(t, "55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3")
	qBx := hexInt(t, "8D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B")
	qBy := hexInt(t, "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A")
	zx := hexInt(t, "89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B")
	zy := hexInt(t, "49C27868F4ECA2179BFD7D59B1E3BF34C1DBDE61AE12931648F43E59632504DE")

	check := func(name string, x, y, wx, wy *big.Int) {
		t.Helper()
		if x.Cmp(wx) != 0 || y.Cmp(wy) != 0 {
			t.Errorf("%s = (%X, %X), want (%X, %X)", name, x, y, wx, wy)
		}
	}
	x, y := c.ScalarBaseMult(dA.Bytes())
	check("dA·G", x, y, qAx, qAy)
	x, y = c.ScalarBaseMult(dB.Bytes())
	check("dB·G", x, y, qBx, qBy)
	x, y = c.ScalarMult(qBx, qBy, dA.Bytes())
	check("dA·QB", x, y, zx, zy)
	x, y = c.ScalarMult(qAx, qAy, dB.Bytes())
	check("dB·QA", x, y, zx, zy)
	for _, pt := range [][2]*big.Int{{qAx, qAy}, {qBx, qBy}, {zx, zy}} {
		if !c.IsOnCurve(pt[0], pt[1]) {
			t.Errorf("(%X, %X) not on curve", pt[0], pt[1])
		}
	}
	if c.IsOnCurve(qAx, new(big.Int).Add(qAy, big.NewInt(1))) {
		t.Error("perturbed point reported on curve")
	}
	x, y = c.ScalarBaseMult(c.Params().N.Bytes())
	if x.Sign() != 0 || y.Sign() != 0 {
		t.Errorf("n·G = (%X, %X), want infinity", x, y)
	}
}
