# TI-Messenger Fachdienst — build, test, run.
# The two commands a newcomer needs: `make run` and `make test`.

SHELL       := /bin/bash
GO          ?= go
BUILD       := build
WASM_ENV    := GOOS=wasip1 GOARCH=wasm
WASM_FLAGS  := -buildmode=c-shared -trimpath -ldflags='-s -w'
FUZZTIME    ?= 10s

# Tests and benchmarks load the compiled filters from here.
export TIM_FILTER_WASM      := $(abspath $(BUILD)/tim-filter.wasm)
export TIM_PASSTHROUGH_WASM := $(abspath $(BUILD)/passthrough.wasm)

.PHONY: all build wasm dendrite test test-go lint run bench conformance fuzz clean mailpit

all: build

## build: every binary into build/bin and the filters into build/*.wasm
build: wasm
	$(GO) build -trimpath -o $(BUILD)/bin/ ./cmd/... ./control/cmd/... ./pushgw/cmd/...

## wasm: the messenger-proxy filter (and the pass-through baseline used by benchmarks)
wasm:
	@mkdir -p $(BUILD)
	$(WASM_ENV) $(GO) build $(WASM_FLAGS) -o $(BUILD)/tim-filter.wasm ./wasm/cmd/tim-filter
	$(WASM_ENV) $(GO) build $(WASM_FLAGS) -o $(BUILD)/passthrough.wasm ./wasm/cmd/passthrough

## dendrite: the Matrix homeserver of the local run and the e2e tests (tools/dendrite), built once
dendrite:
	scripts/build-dendrite.sh

## test: lint, then every test (PostgreSQL-backed storage tests, the two-organisation e2e test on Dendrite)
test: lint wasm dendrite mailpit
	scripts/with-postgres.sh $(GO) test -count=1 -timeout 45m ./...

## lint: gofmt and go vet, for the host and for wasip1
lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(WASM_ENV) $(GO) vet ./wasm/...

## mailpit: the SMTP sink with a readable inbox for tests and `make run` (KIM mails), built with
## `go install` into build/bin outside this module's dependency graph (it cannot be linked in)
MAILPIT_VERSION := v1.33.1
mailpit: $(BUILD)/bin/mailpit
$(BUILD)/bin/mailpit:
	GOBIN=$(abspath $(BUILD)/bin) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

## run: the whole Fachdienst locally (Dendrite on SQLite, VZD and IDP stand-ins, filter hosted in wazero).
## Settings: make run PORT=8580 HOST=0.0.0.0 DATA=/tmp/tim POLICIES=policies REFRESH=2s RUN_FLAGS=-v
## The launcher is built and run itself (not through `go run`), so that its process id in
## $(DATA)/tim-local.pid takes SIGHUP (policy reload) and Ctrl-C reaches it directly.
PORT     ?= 8480
HOST     ?= 127.0.0.1
DATA     ?= .tim-local
POLICIES ?= policies
REFRESH  ?= 2s
run: wasm dendrite mailpit
	$(GO) build -trimpath -o $(BUILD)/bin/ ./cmd/tim-local ./cmd/tim-ctl
	exec $(BUILD)/bin/tim-local -port $(PORT) -host $(HOST) -data $(DATA) -policies '$(POLICIES)' -refresh $(REFRESH) $(RUN_FLAGS)

## bench: every benchmark; figures go to build/bench/<name>.json and are printed
bench: wasm
	@mkdir -p $(BUILD)/bench
	@for b in $$(ls -d bench/*/ | grep -v -e /internal/ -e /cmd/); do \
	  name=$$(basename $$b); echo "== bench $$name"; \
	  $(GO) run ./bench/$$name -out $(BUILD)/bench/$$name.json || exit 1; \
	done

## conformance: the plan VM against OPA on the data-driven corpus
conformance:
	$(GO) run ./conformance/cmd/conformance

## fuzz: a short run of every fuzz target (FUZZTIME each)
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BUILD)
