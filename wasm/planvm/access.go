package planvm

// AsInt64 returns v when it is a number held as an int64: what ParseJSON
// makes of an integer written without fraction or exponent that fits int64.
// Unlike AsInt it never converts a number's text (2.0, 1e3, 1e999999), so
// reading an integer field of a document is cheap and strict whatever the
// number: it accepts what a JSON decoder accepts for an int64 field.
func (v Value) AsInt64() (int64, bool) { return v.i, v.k == KindNumber && !v.text }
