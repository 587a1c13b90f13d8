package filter

// fromHeaders reads the facts of request headers as OnHttpRequestHeaders
// does. It reports false when the path's percent-encoding is invalid.
func (f *facts) fromHeaders(hs [][2]string) bool {
	var r headerValues
	var buf [2]string
	authz := r.collect(hs, buf[:0])
	return f.fromValues(&r, authz)
}
