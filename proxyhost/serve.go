package proxyhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// chunkSize is how much of a request body one body callback gets at most,
// as Envoy hands the filter what one socket read brought.
const chunkSize = 16 << 10

// errReset is what the upstream request's body fails with when a local
// reply resets it.
var errReset = errors.New("proxyhost: upstream request reset by a local reply")

type chunk struct {
	data []byte
	end  bool
	err  error
}

type upstreamResult struct {
	resp *http.Response
	err  error
}

// ServeHTTP runs the request through the filter chain of one worker, as
// Envoy's HTTP connection manager does: headers first, then the body in
// chunks; what the filter lets through goes to the upstream as it does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wk := s.workers[int(s.next.Add(1))%len(s.workers)]
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	wake := make(chan struct{}, 1)

	wk.mu.Lock()
	st, err := wk.vm.NewStream()
	if err != nil {
		wk.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"filter failure"}`)
		return
	}
	st.wake = wake
	_, err = wk.vm.RequestHeaders(st, requestHeaders(r), !hasBody)
	wk.mu.Unlock()
	defer func() {
		wk.mu.Lock()
		st.wake = nil
		_ = wk.vm.Done(st)
		wk.mu.Unlock()
	}()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"filter failure"}`)
		return
	}

	chunks := make(chan chunk, 1)
	stopReading := make(chan struct{})
	defer close(stopReading)
	if hasBody {
		go readChunks(r.Body, chunks, stopReading)
	}
	bodyDone := !hasBody
	var (
		up      *upstreamCall
		result  chan upstreamResult
		timeout = time.NewTimer(s.cfg.RequestTimeout)
	)
	defer timeout.Stop()
	for {
		// What the filter chain decided since the last look.
		wk.mu.Lock()
		local := st.Local
		startUp := st.Upstream.Headers && up == nil && local == nil
		var headers [][2]string
		if startUp {
			headers = append(headers, st.ReqHeaders...)
		}
		out, end := st.Upstream.Body, st.Upstream.End
		st.Upstream.Body = nil
		stopAllFull := st.stopAll && len(st.held) >= s.rt.opts.BufferLimit
		stopped := st.stopped
		wk.mu.Unlock()

		if local != nil {
			up.reset()
			writeLocal(w, local)
			return
		}
		if startUp {
			up, result = s.startUpstream(r, headers, out, end)
		} else if up != nil && len(out) > 0 {
			up.write(out)
		}
		if up != nil && end {
			up.end()
		}
		// The decoder side is over once the filter let the end through;
		// then only the upstream's answer is awaited.
		if up != nil && end && !stopped {
			break
		}
		var next <-chan chunk
		if !bodyDone && !stopAllFull { // watermark: a held body over the limit stops reading
			next = chunks
		}
		select {
		case c := <-next:
			if c.err != nil {
				up.reset()
				return
			}
			bodyDone = c.end
			wk.mu.Lock()
			_, err = wk.vm.RequestBody(st, c.data, c.end)
			wk.mu.Unlock()
			if err != nil {
				up.reset()
				writeJSON(w, http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"filter failure"}`)
				return
			}
		case <-wake:
		case res := <-result:
			// The upstream answered before the request was through.
			s.relay(w, wk, st, res)
			return
		case <-timeout.C:
			up.reset()
			writeJSON(w, http.StatusGatewayTimeout, `{"errcode":"M_UNKNOWN","error":"filter timed out"}`)
			return
		case <-r.Context().Done():
			up.reset()
			return
		}
	}
	s.relay(w, wk, st, <-result)
}

// readChunks reads the downstream body in chunks until its end, an error,
// or until the request is over (stop).
func readChunks(body io.Reader, out chan<- chunk, stop <-chan struct{}) {
	for {
		buf := make([]byte, chunkSize)
		n, err := io.ReadFull(body, buf)
		c := chunk{data: buf[:n]}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			c.end = true
		default:
			c = chunk{err: err}
		}
		select {
		case out <- c:
		case <-stop:
			return
		}
		if c.end || c.err != nil {
			return
		}
	}
}

// upstreamCall is the upstream request in flight; its body is a pipe the
// filter chain writes into (through a goroutine, so that a slow upstream
// never blocks the filter) as it lets data through.
type upstreamCall struct {
	pw     *io.PipeWriter
	data   chan []byte
	cancel context.CancelFunc
	ended  bool
}

func (u *upstreamCall) write(b []byte) {
	if !u.ended {
		u.data <- b
	}
}

func (u *upstreamCall) end() {
	if !u.ended {
		u.ended = true
		close(u.data)
	}
}

// reset aborts the upstream request, as Envoy's router resets it when a
// local reply ends the downstream stream; before the request started (nil)
// there is nothing to abort.
func (u *upstreamCall) reset() {
	if u == nil {
		return
	}
	if u.pw != nil {
		u.pw.CloseWithError(errReset)
	}
	u.cancel()
	u.end()
}

// startUpstream sends the request upstream with the body the filter let
// through so far; when the request is complete already, that is the body.
func (s *Server) startUpstream(r *http.Request, headers [][2]string, first []byte, end bool) (*upstreamCall, chan upstreamResult) {
	ctx, cancel := context.WithCancel(r.Context())
	u := &upstreamCall{cancel: cancel, data: make(chan []byte, 64)}
	res := make(chan upstreamResult, 1)
	var body io.Reader
	if end {
		u.ended = true
		close(u.data)
		body = bytes.NewReader(first)
	} else {
		pr, pw := io.Pipe()
		u.pw = pw
		body = pr
		u.data <- first
		go func() {
			for b := range u.data {
				if _, err := pw.Write(b); err != nil {
					break
				}
			}
			for range u.data { // drained after a reset
			}
			pw.Close()
		}()
	}
	req, err := s.upstreamRequest(ctx, r, headers, body, end, len(first))
	if err != nil {
		res <- upstreamResult{err: err}
		return u, res
	}
	go func() {
		resp, err := s.client.Do(req)
		res <- upstreamResult{resp, err}
	}()
	return u, res
}

func (s *Server) upstreamRequest(ctx context.Context, r *http.Request, headers [][2]string, body io.Reader, end bool, n int) (*http.Request, error) {
	ref, err := url.Parse(lookup(headers, ":path"))
	if err != nil {
		return nil, err
	}
	target := s.cfg.Upstream.ResolveReference(ref)
	if end && n == 0 {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, lookup(headers, ":method"), target.String(), body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = -1
	if end {
		req.ContentLength = int64(n)
	} else if r.ContentLength > 0 {
		req.ContentLength = r.ContentLength
	}
	for _, h := range headers {
		if !strings.HasPrefix(h[0], ":") && h[0] != "host" && h[0] != "content-length" && h[0] != "transfer-encoding" {
			req.Header.Add(h[0], h[1])
		}
	}
	req.Host = lookup(headers, ":authority")
	// As the bootstrap's HCMs: the downstream address replaces whatever
	// X-Forwarded-For the client sent.
	req.Header.Set("X-Forwarded-For", clientIP(r))
	return req, nil
}

// relay sends the upstream's answer downstream through the filter's
// response callbacks, as Envoy's encoder filter chain does: the headers
// (":status" first), then the body in chunks as they arrive, the last
// callback with end of stream. The filter sees each chunk in its response
// body buffer. A filter that stops a response is not supported here (the
// messenger filter never does): the answer is cut off with 502 when that
// happens before the headers went out, else the connection is reset.
func (s *Server) relay(w http.ResponseWriter, wk *worker, st *Stream, res upstreamResult) {
	if res.err != nil {
		writeJSON(w, http.StatusBadGateway, `{"errcode":"M_UNKNOWN","error":"upstream unreachable"}`)
		return
	}
	defer res.resp.Body.Close()
	hs := [][2]string{{":status", strconv.Itoa(res.resp.StatusCode)}}
	for k, vs := range res.resp.Header {
		for _, v := range vs {
			hs = append(hs, [2]string{k, v})
		}
	}
	noBody := res.resp.ContentLength == 0
	wk.mu.Lock()
	a, err := wk.vm.ResponseHeaders(st, hs, noBody)
	wk.mu.Unlock()
	if err != nil || a != ActionContinue {
		writeJSON(w, http.StatusBadGateway, `{"errcode":"M_UNKNOWN","error":"filter stopped the response"}`)
		return
	}
	for k, vs := range res.resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(res.resp.StatusCode)
	if noBody {
		return
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := res.resp.Body.Read(buf)
		end := rerr != nil
		if n > 0 || end {
			wk.mu.Lock()
			a, err := wk.vm.ResponseBody(st, buf[:n], end)
			wk.mu.Unlock()
			if err != nil || a != ActionContinue {
				panic(http.ErrAbortHandler)
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if end {
			return
		}
	}
}

func writeLocal(w http.ResponseWriter, l *LocalResponse) {
	for _, h := range l.Headers {
		w.Header().Add(h[0], h[1])
	}
	w.WriteHeader(l.Status)
	w.Write(l.Body)
}
