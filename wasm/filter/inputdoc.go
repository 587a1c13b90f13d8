package filter

import (
	"errors"

	"github.com/timfd/fachdienst/wasm/matrix"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// InputMaker builds the policy input the filter builds for a request, as
// JSON, for peers that evaluate the same policy elsewhere (bench/filter
// compares OPA's evaluator with the plan VM on the same input). The
// filter itself never calls it; the linker leaves it out of the filter.
type InputMaker struct {
	p *plugin
	s *stream
}

// NewInputMaker returns an InputMaker for a listener of role (client,
// federation, egress) with the endpoint tables of the policy data.
func NewInputMaker(role string, data []byte) (*InputMaker, error) {
	d, err := planvm.ParseJSON(data)
	if err != nil {
		return nil, err
	}
	r, err := endpointRouter(d, role)
	if err != nil {
		return nil, err
	}
	p := &plugin{cfg: &Config{Direction: role}, router: r}
	return &InputMaker{p: p, s: &stream{p: p}}, nil
}

// ErrRefused: the filter refuses the request before the policy runs (no
// canonical path, bad body).
var ErrRefused = errors.New("filter: refused before the policy")

// Input returns the input document of the request (body nil when it has
// none).
func (m *InputMaker) Input(headers [][2]string, body []byte) ([]byte, error) {
	s := m.s
	s.f = facts{}
	var hv headerValues
	hv.collect(headers)
	if err := s.f.fromValues(&hv, m.p.router, nil); err != nil {
		return nil, ErrRefused
	}
	if s.f.route.Name == matrix.RouteJoin {
		var err error
		if s.f.servers, err = joinServers(nil, &s.f.segs, s.f.route.RoomID); err != nil {
			return nil, ErrRefused
		}
	}
	if s.f.route.NeedsBody {
		if err := s.f.fromBody(body); err != nil {
			return nil, ErrRefused
		}
	}
	return planvm.ToJSON(s.input(false))
}
