package localstack

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// tlsOrPlain serves TLS and plain HTTP on one listener: a connection that opens with a TLS handshake
// record (first byte 0x16) is served with TLS. The push gateway's port takes plain HTTP from people
// and tests and HTTPS from Dendrite, which registers only https pusher URLs.
type tlsOrPlain struct {
	net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

func newTLSOrPlain(ln net.Listener, cfg *tls.Config) *tlsOrPlain {
	l := &tlsOrPlain{Listener: ln, cfg: cfg, conns: make(chan net.Conn), errs: make(chan error, 1), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsOrPlain) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.errs <- err
			return
		}
		go l.sniff(c)
	}
}

// sniff reads the first byte (within 10 s, so a silent client cannot hold a goroutine for long).
func (l *tlsOrPlain) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	b, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peeked{Conn: c, r: br}
	if b[0] == 0x16 {
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

func (l *tlsOrPlain) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		l.errs <- err // every later Accept fails too
		return nil, err
	}
}

func (l *tlsOrPlain) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// peeked is a connection whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }
