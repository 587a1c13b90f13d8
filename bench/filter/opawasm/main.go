// Command opawasm is the "OPA in Wasm" peer of the filter benchmark: a
// proxy-wasm filter that decides each request with OPA's own evaluator
// (github.com/open-policy-agent/opa/v1/rego), compiled to wasip1, on the
// same Rego, data and input the messenger-proxy filter uses (the input is
// built by filter.InputMaker). It is what an "OPA in the filter" design
// costs, measured in proxyhost; it is not an Envoy filter of this project
// (40 MB, never loaded in Envoy here).
//
// Its plugin configuration is {"role", "query", "modules": {name: source},
// "data"}. It decides when the request is complete (the headers' end of
// stream, else the body's), reading the body only then.
package main

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/timfd/fachdienst/wasm/filter"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	pq    rego.PreparedEvalQuery
	input *filter.InputMaker
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	raw, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogCritical("opawasm: no configuration")
		return types.OnPluginStartStatusFailed
	}
	var cfg struct {
		Role    string            `json:"role"`
		Modules map[string]string `json:"modules"`
		Data    json.RawMessage   `json:"data"`
		Query   string            `json:"query"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		proxywasm.LogCritical("opawasm: configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	var data map[string]any
	if err := json.Unmarshal(cfg.Data, &data); err != nil {
		proxywasm.LogCritical("opawasm: data: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	opts := []func(*rego.Rego){rego.Query(cfg.Query), rego.Store(inmem.NewFromObject(data))}
	for name, src := range cfg.Modules {
		opts = append(opts, rego.Module(name, src))
	}
	if p.pq, err = rego.New(opts...).PrepareForEval(context.Background()); err != nil {
		proxywasm.LogCritical("opawasm: prepare: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	if p.input, err = filter.NewInputMaker(cfg.Role, cfg.Data); err != nil {
		proxywasm.LogCritical("opawasm: input: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{p: p} }

type stream struct {
	types.DefaultHttpContext
	p       *plugin
	headers [][2]string
}

func (s *stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		return s.deny()
	}
	s.headers = hs
	if endOfStream {
		return s.decide(nil)
	}
	return types.ActionContinue
}

func (s *stream) OnHttpRequestBody(size int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		return s.deny()
	}
	return s.decide(body)
}

func (s *stream) decide(body []byte) types.Action {
	in, err := s.p.input.Input(s.headers, body)
	if err != nil {
		return s.deny()
	}
	v, err := ast.ValueFromReader(bytes.NewReader(in))
	if err != nil {
		return s.deny()
	}
	rs, err := s.p.pq.Eval(context.Background(), rego.EvalParsedInput(v))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return s.deny()
	}
	d, _ := rs[0].Expressions[0].Value.(map[string]any)
	if allow, _ := d["allow"].(bool); !allow {
		return s.deny()
	}
	return types.ActionContinue
}

func (s *stream) deny() types.Action {
	_ = proxywasm.SendHttpResponse(403, nil, []byte(`{"errcode":"M_FORBIDDEN"}`), -1)
	return types.ActionPause
}
