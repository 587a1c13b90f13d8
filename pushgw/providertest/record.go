package providertest

import "sync"

// Push is one request a fake provider accepted for processing.
type Push struct {
	PushKey string
	Headers map[string]string
	Body    []byte // APNs/FCM: the JSON body; Web Push: the decrypted payload
	Status  int    // what the fake answered
}

type recorder struct {
	mu     sync.Mutex
	pushes []Push
	counts map[string]int
	script Script
	errors []string
}

func (r *recorder) next(key string) (int, Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[key]++
	n := r.counts[key]
	rep := Reply{Status: 200}
	if r.script != nil {
		rep = r.script(key, n)
	}
	return n, rep
}

func (r *recorder) add(p Push) {
	r.mu.Lock()
	r.pushes = append(r.pushes, p)
	r.mu.Unlock()
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	r.errors = append(r.errors, msg)
	r.mu.Unlock()
}

// SetScript replaces the answer script.
func (r *recorder) SetScript(s Script) {
	r.mu.Lock()
	r.script = s
	r.mu.Unlock()
}

// Pushes returns a copy of what was received.
func (r *recorder) Pushes() []Push {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Push(nil), r.pushes...)
}

// Delivered counts pushes answered with 2xx.
func (r *recorder) Delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.pushes {
		if p.Status/100 == 2 {
			n++
		}
	}
	return n
}

// Attempts is how many pushes for a key arrived.
func (r *recorder) Attempts(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// Errors lists protocol violations the fake saw (bad token, wrong header…).
func (r *recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}
