package filter

// The tests load the compiled proxy policy from testdata (no OPA under wasm/).
//go:generate go run ../../proxyhost/genplan -o testdata/proxy-plan.json
