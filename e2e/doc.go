// Package e2e holds the end-to-end tests: they drive the whole Fachdienst in-process over real
// HTTP. A client talks to proxyhost running the compiled tim-filter.wasm, which forwards to the
// homeserver stand-in and calls the control plane, which in turn talks to the VZD stand-in. The
// wiring is internal/localstack, the same that `make run` starts.
//
//	go test ./e2e/   (uses $TIM_FILTER_WASM, else builds the filter first)
package e2e
