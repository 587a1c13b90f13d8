package planvm

import (
	"math/big"
)

// Arithmetic follows OPA's topdown: small integers (32-bit range) are
// computed directly, other integers exactly with big.Int, everything else
// with big.Float (its default 64-bit mantissa) and formatted like OPA
// ('f' for integral results, shortest 'g' otherwise).

type arithOp uint8

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opRem
)

const (
	minSmall = -1 << 31
	maxSmall = 1<<31 - 1
)

func small(v Value) (int64, bool) {
	if v.k == KindNumber && !v.text && v.i >= minSmall && v.i <= maxSmall {
		return v.i, true
	}
	return 0, false
}

func arith(op arithOp) func(*vm, []Value) (Value, bool) {
	return func(_ *vm, a []Value) (Value, bool) { return arith2(op, a[0], a[1]) }
}

func arith2(op arithOp, x, y Value) (Value, bool) {
	if x.k != KindNumber || y.k != KindNumber {
		return Value{}, false
	}
	if a, ok := small(x); ok {
		if b, ok := small(y); ok {
			switch op {
			case opAdd:
				return Int(a + b), true
			case opSub:
				return Int(a - b), true
			case opMul:
				return Int(a * b), true
			case opDiv:
				if b == 0 {
					return Value{}, false
				}
				if a != 0 && a%b == 0 {
					return Int(a / b), true
				}
			case opRem:
				if b == 0 {
					return Value{}, false
				}
				return Int(a % b), true
			}
		}
	}
	if op != opDiv {
		if a, ok := toBigInt(x); ok {
			if b, ok := toBigInt(y); ok {
				z := new(big.Int)
				switch op {
				case opAdd:
					z.Add(a, b)
				case opSub:
					z.Sub(a, b)
				case opMul:
					z.Mul(a, b)
				case opRem:
					if b.Sign() == 0 {
						return Value{}, false
					}
					z.Rem(a, b)
				}
				return numberFromText(z.String()), true
			}
		}
	}
	if op == opRem {
		return Value{}, false // modulo on floating-point number
	}
	a, ok1 := toFloat(x)
	b, ok2 := toFloat(y)
	if !ok1 || !ok2 {
		return Value{}, false
	}
	z := new(big.Float)
	switch op {
	case opAdd:
		z.Add(a, b)
	case opSub:
		z.Sub(a, b)
	case opMul:
		z.Mul(a, b)
	case opDiv:
		if i, acc := b.Int64(); acc == big.Exact && i == 0 {
			return Value{}, false
		}
		z.Quo(a, b)
	}
	return floatToNumber(z), true
}

func unary(smallFn func(int64) int64, fl func(*big.Float) *big.Float) func(*vm, []Value) (Value, bool) {
	return func(_ *vm, a []Value) (Value, bool) {
		x := a[0]
		if x.k != KindNumber {
			return Value{}, false
		}
		if i, ok := small(x); ok {
			if smallFn == nil {
				return x, true
			}
			return Int(smallFn(i)), true
		}
		f, ok := toFloat(x)
		if !ok {
			return Value{}, false
		}
		return floatToNumber(fl(f)), true
	}
}

// fold implements sum and product over arrays and sets of numbers.
func fold(v Value, init int64, op arithOp) (Value, bool) {
	es, ok := elements(v)
	if !ok {
		return Value{}, false
	}
	for _, e := range es {
		if e.k != KindNumber {
			return Value{}, false
		}
	}
	// Integers exactly, others through big.Float, like OPA.
	allInt := true
	for _, e := range es {
		if _, ok := toBigInt(e); !ok {
			allInt = false
			break
		}
	}
	if allInt {
		z := big.NewInt(init)
		for _, e := range es {
			b, _ := toBigInt(e)
			if op == opAdd {
				z.Add(z, b)
			} else {
				z.Mul(z, b)
			}
		}
		return numberFromText(z.String()), true
	}
	f := new(big.Float).SetInt64(init)
	for _, e := range es {
		b, ok := toFloat(e)
		if !ok {
			return Value{}, false
		}
		if op == opAdd {
			f.Add(f, b)
		} else {
			f.Mul(f, b)
		}
	}
	return floatToNumber(f), true
}

func toBigInt(v Value) (*big.Int, bool) {
	if v.k != KindNumber {
		return nil, false
	}
	if !v.text {
		return big.NewInt(v.i), true
	}
	if i, ok := new(big.Int).SetString(v.s, 10); ok {
		return i, true
	}
	r, ok := new(big.Rat).SetString(v.s)
	if !ok || !r.IsInt() {
		return nil, false
	}
	return new(big.Int).Set(r.Num()), true
}

func toFloat(v Value) (*big.Float, bool) {
	if v.k != KindNumber {
		return nil, false
	}
	t, _ := v.NumberText()
	f, ok := new(big.Float).SetString(t)
	return f, ok
}

func floatToNumber(f *big.Float) Value {
	if f.IsInf() {
		return Value{}
	}
	format := byte('g')
	if f.IsInt() {
		format = 'f'
	}
	return numberFromText(f.Text(format, -1))
}
